"""Agents can be notified of finished runs: notify_url and its signing secret.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("notify_secret", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("notify_secret")
        batch_op.drop_column("notify_url")
