"""mri — see module docstrings."""
