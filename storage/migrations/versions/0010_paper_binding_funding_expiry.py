"""paper accounts are bound to their market data source; funding history; limit entries expire

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts opened before this revision have no source (NULL): they are bound on their next write.
    with op.batch_alter_table("paper_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("market_source", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("funding_total", sa.String(64), nullable=False, server_default="0"))
    with op.batch_alter_table("paper_positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("funded_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "paper_funding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("funding_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("mark_price", sa.String(length=64), nullable=False),
        sa.Column("rate", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["paper_accounts.account_id"], name=op.f("fk_paper_funding_account_id_paper_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_funding")),
        sa.UniqueConstraint("account_id", "symbol", "funding_time", name="uq_paper_funding_account_symbol_time"),
    )
    with op.batch_alter_table("paper_funding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_funding_account_id"), ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("paper_funding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_funding_account_id"))
    op.drop_table("paper_funding")
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("paper_positions", schema=None) as batch_op:
        batch_op.drop_column("funded_at")
    with op.batch_alter_table("paper_accounts", schema=None) as batch_op:
        batch_op.drop_column("funding_total")
        batch_op.drop_column("market_source")
