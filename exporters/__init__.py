"""spanguard.exporters: see ARCHITECTURE.md; filled in by later issues."""
