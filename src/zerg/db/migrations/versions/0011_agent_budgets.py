"""Per-agent budgets: token and cost limits per run and per UTC day, a machine-readable code
on a run's error, and an index that sums an agent's runs of one day without reading the rest.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# A rebuilt SQLite table keeps AUTOINCREMENT only when told again.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("max_run_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_run_cost_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("max_day_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_day_cost_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("runs", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
    op.create_index("ix_runs_agent_id_queued_at", "runs", ["agent_id", "queued_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_agent_id_queued_at", table_name="runs")
    with op.batch_alter_table("runs", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column("error_code")
    with op.batch_alter_table("agents", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column("max_day_cost_usd")
        batch_op.drop_column("max_day_tokens")
        batch_op.drop_column("max_run_cost_usd")
        batch_op.drop_column("max_run_tokens")
