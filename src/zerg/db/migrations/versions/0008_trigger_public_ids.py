"""Webhook triggers get a random public id: deliveries go to /hooks/{public_id}.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# A rebuilt SQLite table keeps AUTOINCREMENT only when told again.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("triggers", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=64), nullable=True))
    # Each existing trigger gets its own random id, drawn here: SQL has no portable way to.
    triggers = sa.table("triggers", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    bind = op.get_bind()
    for trigger_id in bind.execute(sa.select(triggers.c.id)).scalars().all():
        bind.execute(
            triggers.update()
            .where(triggers.c.id == trigger_id)
            .values(public_id=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table("triggers", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_triggers_public_id"), ["public_id"])


def downgrade() -> None:
    with op.batch_alter_table("triggers", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_triggers_public_id"), type_="unique")
        batch_op.drop_column("public_id")
