"""wsi — see module docstrings."""
