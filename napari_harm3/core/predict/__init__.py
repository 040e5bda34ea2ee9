"""Predictions of trained models on one case (pure core: no Qt, no napari)."""
