"""Distributed mode: worker heartbeats, and the executor that ran each run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zerg.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("executor_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reaped_by", sa.String(length=128), nullable=True),
        sa.Column("reaped_at", zerg.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("executor_id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_heartbeat_at"), ["heartbeat_at"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("executor_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("executor_id")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_heartbeat_at"))
    op.drop_table("workers")
