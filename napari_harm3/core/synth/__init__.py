"""synth — see module docstrings."""
