"""signal webhook: seen signatures, so a replayed signal is refused

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_nonces",
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )
    op.create_index("ix_signal_nonces_received_at", "signal_nonces", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signal_nonces_received_at", table_name="signal_nonces")
    op.drop_table("signal_nonces")
