"""Runs get an engine identity of their own, ids are never reused on SQLite, the database
names itself, and webhook replays are recognised by their body.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zerg.db.types
from zerg import clock

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before children: each rebuilt table's foreign keys name tables already rebuilt.
_ID_TABLES = ("agents", "threads", "messages", "runs", "triggers")


def upgrade() -> None:
    op.create_table(
        "instance",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance")),
    )
    instance = sa.table(
        "instance",
        sa.column("id", sa.String),
        sa.column("created_at", zerg.db.types.UTCDateTime(timezone=True)),
    )
    op.bulk_insert(instance, [{"id": uuid.uuid4().hex, "created_at": clock.now()}])
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("delivery_hash", sa.String(length=64), nullable=True))
    # Existing runs keep the workflow id they were started under.
    op.execute("UPDATE runs SET workflow_id = 'run-' || id")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("workflow_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_runs_workflow_id"), ["workflow_id"])
        batch_op.create_index(batch_op.f("ix_runs_delivery_hash"), ["delivery_hash"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        # AUTOINCREMENT needs the table rebuilt (foreign keys are off meanwhile: see migrate).
        for table in _ID_TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_delivery_hash"))
        batch_op.drop_constraint(batch_op.f("uq_runs_workflow_id"), type_="unique")
        batch_op.drop_column("delivery_hash")
        batch_op.drop_column("workflow_id")
    op.drop_table("instance")
