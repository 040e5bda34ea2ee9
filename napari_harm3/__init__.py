"""napari-harm3: a case viewer for head-and-neck cancer teams (research use only).

Importing the package imports nothing heavy: no Qt, no napari, no torch. The napari
entry points live in ``napari_harm3._readers``, ``_sample_data`` and ``_qt``.
"""

__version__ = "0.1.0"
