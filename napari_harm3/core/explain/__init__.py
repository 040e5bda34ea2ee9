"""explain — see module docstrings."""
