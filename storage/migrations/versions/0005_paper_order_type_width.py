"""paper order types fit their longest name (take_profit_market)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # VARCHAR(16) refused "take_profit_market" (18 characters) on PostgreSQL; rows stored under the interim
    # short name get their real one back.
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.alter_column("type", existing_type=sa.String(16), type_=sa.String(32), existing_nullable=False)
    op.execute("UPDATE paper_orders SET type = 'take_profit_market' WHERE type = 'tp_market'")


def downgrade() -> None:
    op.execute("UPDATE paper_orders SET type = 'tp_market' WHERE type = 'take_profit_market'")
    with op.batch_alter_table("paper_orders", schema=None) as batch_op:
        batch_op.alter_column("type", existing_type=sa.String(32), type_=sa.String(16), existing_nullable=False)
