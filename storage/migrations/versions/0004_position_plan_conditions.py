"""position plans remember the conditions acted on per position epoch

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the rows of positions already open: epoch 0, nothing handled yet.
    with op.batch_alter_table("position_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("handled", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("position_plans", schema=None) as batch_op:
        batch_op.drop_column("handled")
        batch_op.drop_column("epoch")
