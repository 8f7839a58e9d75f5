"""An agent's newest run in one index lookup: the runs' agent index also orders by id.

The dashboard shows each agent's latest run; with the index on `agent_id` alone PostgreSQL
read every run of the agent to find it. On SQLite the old index held the id already (as the
rowid): the new one is the same there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_agent_id_id", "runs", ["agent_id", "id"], unique=False)
    op.drop_index("ix_runs_agent_id", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_agent_id", "runs", ["agent_id"], unique=False)
    op.drop_index("ix_runs_agent_id_id", table_name="runs")
