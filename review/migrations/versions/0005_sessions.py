"""Sessions: each review item's conversation id, user id and session key, backfilled from its stored spans
(docs/review.md, "Sessions"); an item without a conversation id is a session of one trace, keyed by its trace id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spanguard.review.store import SESSION_ID_MAX, session_ids

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = ("conversation_id", "user_id", "session_key")
_ACTIVITY = ("session_key", "risk_rank", "updated_at", "created_at", "tier", "status")  # the listing's covering index
_BATCH = 500


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch table copy): SQLite recreating review_items would trip the foreign keys on it.
    for column in _COLUMNS:
        op.add_column("review_items", sa.Column(column, sa.String(SESSION_ID_MAX), nullable=True))
        op.create_index(f"ix_review_items_{column}", "review_items", [column])
    op.create_index("ix_review_items_session_activity", "review_items", list(_ACTIVITY))
    items = sa.table(
        "review_items",
        sa.column("id", sa.Integer()),
        sa.column("trace_id", sa.String()),
        sa.column("spans", sa.JSON()),
        *(sa.column(column, sa.String()) for column in _COLUMNS),
    )
    connection = op.get_bind()
    last = 0
    while True:  # by id in batches: a large store's spans never all sit in memory at once
        rows = connection.execute(
            sa.select(items.c.id, items.c.trace_id, items.c.spans)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for item_id, trace_id, spans in rows:
            conversation_id, user_id = session_ids(spans if isinstance(spans, list) else [])
            connection.execute(
                items.update()
                .where(items.c.id == item_id)
                .values(conversation_id=conversation_id, user_id=user_id, session_key=conversation_id or trace_id)
            )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_review_items_session_activity", "review_items")
    for column in reversed(_COLUMNS):
        op.drop_index(f"ix_review_items_{column}", "review_items")
        op.drop_column("review_items", column)
