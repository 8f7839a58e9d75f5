"""Users and API tokens; agents get an owner, runs the token that started them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zerg.db.types

NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", zerg.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", zerg.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", zerg.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", zerg.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_tokens_prefix")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
    # A rebuilt SQLite table keeps AUTOINCREMENT only when told again.
    with op.batch_alter_table("agents", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_agents_owner_id"), ["owner_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_agents_owner_id_users"),
            "users",
            ["owner_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    # A rebuilt SQLite table keeps AUTOINCREMENT only when told again.
    with op.batch_alter_table("runs", table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column("token_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_token_id"), ["token_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_runs_token_id_api_tokens"),
            "api_tokens",
            ["token_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_runs_token_id_api_tokens"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_runs_token_id"))
        batch_op.drop_column("token_id")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_agents_owner_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_agents_owner_id"))
        batch_op.drop_column("owner_id")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
    op.drop_table("api_tokens")
    op.drop_table("users")
