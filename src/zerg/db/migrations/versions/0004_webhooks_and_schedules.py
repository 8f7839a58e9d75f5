"""Webhook trigger secret rotation, the payload a run was given, the missed-fires policy.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zerg.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_expires_at",
                zerg.db.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input", zerg.db.types.JSONType(), nullable=True))
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "missed_fires", sa.String(length=16), nullable=False, server_default="run_once"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("missed_fires")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("input")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
