"""Review by session: items gain a kind (trace or session), the session item a trace is reviewed within, the earlier
session item a follow-up follows; decisions gain the turn a session item's correction is for (docs/review.md,
"Review by session"). Existing items stay trace items, reviewed on their own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ACTIVITY = ("session_key", "risk_rank", "updated_at", "created_at", "tier", "status")  # 0005's covering index


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch table copy): SQLite recreating review_items would trip the foreign keys on it.
    op.add_column("review_items", sa.Column("kind", sa.String(16), nullable=False, server_default="trace"))
    op.add_column("review_items", sa.Column("session_item_id", sa.Integer(), nullable=True))
    op.add_column("review_items", sa.Column("follows_id", sa.Integer(), nullable=True))
    op.create_index("ix_review_items_session_item_id", "review_items", ["session_item_id"])
    # The sessions listing reads a trace's session item beside its status: from the index, not the (large) row.
    op.drop_index("ix_review_items_session_activity", "review_items")
    op.create_index("ix_review_items_session_activity", "review_items", [*_ACTIVITY, "session_item_id"])
    op.create_index("ix_review_items_session_review", "review_items", ["conversation_id", "kind", "status"])
    op.add_column("decisions", sa.Column("turn", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("decisions", "turn")
    op.drop_index("ix_review_items_session_review", "review_items")
    op.drop_index("ix_review_items_session_activity", "review_items")
    op.create_index("ix_review_items_session_activity", "review_items", list(_ACTIVITY))
    op.drop_index("ix_review_items_session_item_id", "review_items")
    for column in ("follows_id", "session_item_id", "kind"):
        op.drop_column("review_items", column)
