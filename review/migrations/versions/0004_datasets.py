"""Datasets: named sets of reviewed items and rejected approval requests, with tags (docs/datasets.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id"), nullable=True),
        sa.Column("approval_id", sa.String(32), sa.ForeignKey("approval_requests.id"), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("tags_index", sa.String(1400), nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("dataset", "item_id", name="uq_dataset_cases_item"),
        sa.UniqueConstraint("dataset", "approval_id", name="uq_dataset_cases_approval"),
    )
    for column in ("dataset", "item_id", "approval_id"):
        op.create_index(f"ix_dataset_cases_{column}", "dataset_cases", [column])


def downgrade() -> None:
    op.drop_table("dataset_cases")
