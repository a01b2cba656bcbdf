"""spanguard.review: see ARCHITECTURE.md; filled in by later issues."""
