"""spanguard.collector: see ARCHITECTURE.md; filled in by later issues."""
