"""report — see module docstrings."""
