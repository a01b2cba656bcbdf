"""Decisions with ratings and checklists, API tokens, and the columns the queue filters on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _index(values: list[str]) -> str:
    return "|" + "|".join(v.replace("|", "/") for v in values) + "|" if values else ""


def upgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("reasons_index", sa.String(4000), nullable=False, server_default=""))
        batch.add_column(sa.Column("models", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("models_index", sa.String(2000), nullable=False, server_default=""))
        batch.add_column(sa.Column("preview", sa.String(400), nullable=False, server_default=""))
        batch.add_column(sa.Column("golden", sa.Text(), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
    # Items ingested before this revision get their reasons filter column; models and preview fill in on the next
    # merge (they need the conversation, which is not the migration's business).
    items = sa.table("review_items", sa.column("id", sa.Integer), sa.column("reasons", sa.JSON))
    connection = op.get_bind()
    for item_id, reasons in connection.execute(sa.select(items.c.id, items.c.reasons)).all():
        values = json.loads(reasons) if isinstance(reasons, str) else (reasons or [])
        connection.execute(
            sa.text("UPDATE review_items SET reasons_index = :index WHERE id = :id"),
            {"index": _index([str(v) for v in values]), "id": item_id},
        )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("ratings", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_decisions_item_id", "decisions", ["item_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_api_tokens_name", "api_tokens", ["name"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("decisions")
    with op.batch_alter_table("review_items") as batch:
        for column in ("claimed_at", "decided_at", "golden", "preview", "models_index", "models", "reasons_index"):
            batch.drop_column(column)
