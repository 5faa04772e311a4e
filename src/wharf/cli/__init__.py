"""The `wharf` command."""
