"""The ``harm3`` command line (``main.py``) and one module per sub-command."""
