"""spanguard.processors: see ARCHITECTURE.md; filled in by later issues."""
