"""Pure core of napari-harm3: numpy / torch / scipy only, never Qt or napari.

Everything here runs headless, from the command line and in tests.
"""
