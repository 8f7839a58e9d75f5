"""The event log (every event's id and what it said), chat turns as runs (the user message
a turn answers, at most one open turn per thread), and an index of an agent's runs by status.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zerg.db.types

# A rebuilt SQLite table keeps AUTOINCREMENT only when told again.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}
OPEN_CHAT_TURN = sa.text("\"trigger\" = 'chat' AND status IN ('queued', 'running')")

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("data", zerg.db.types.JSONType(), nullable=False),
        sa.Column("created_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_events_run_id_id", "events", ["run_id", "id"], unique=False)
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"], unique=False)
    with op.batch_alter_table("runs", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_agent_id_status", "runs", ["agent_id", "status"], unique=False)
    op.create_index(
        "uq_runs_open_chat_turn",
        "runs",
        ["thread_id"],
        unique=True,
        sqlite_where=OPEN_CHAT_TURN,
        postgresql_where=OPEN_CHAT_TURN,
    )


def downgrade() -> None:
    op.drop_index("uq_runs_open_chat_turn", table_name="runs")
    op.drop_index("ix_runs_agent_id_status", table_name="runs")
    with op.batch_alter_table("runs", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column("message_id")
    op.drop_index(op.f("ix_events_created_at"), table_name="events")
    op.drop_index("ix_events_run_id_id", table_name="events")
    op.drop_table("events")
