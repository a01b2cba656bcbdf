"""Alembic environment of the review store: runs on the connection :meth:`ReviewStore.migrate` hands over."""

from __future__ import annotations

from alembic import context

from spanguard.review import approvals, datasets  # noqa: F401  (their tables are on Base's metadata)
from spanguard.review.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the review store's migrations with `spanguard review migrate` (ReviewStore.migrate)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
