"""Runs hold their agent's single slot while active (concurrency: reject).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot_agent_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_runs_slot_agent_id"), ["slot_agent_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_runs_slot_agent_id"), type_="unique")
        batch_op.drop_column("slot_agent_id")
