"""models — see module docstrings."""
