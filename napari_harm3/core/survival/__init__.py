"""survival — see module docstrings."""
