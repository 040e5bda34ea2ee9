"""train — see module docstrings."""
