"""Loaded fold ensembles, kept per (model folder, device) for the whole session (thread-safe)."""

from __future__ import annotations

import threading
from pathlib import Path

from ..models.registry import Ensemble, load_ensemble


class ModelCache:
    """``get(folder, device, analysis)`` loads a folder's ensemble once; later calls reuse it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ensembles: dict = {}

    def get(self, folder, device: str, analysis: str) -> Ensemble:
        key = (str(Path(folder).resolve()), str(device), analysis)
        with self._lock:
            found = self._ensembles.get(key)
        if found is not None:
            return found
        ensemble = load_ensemble(folder, device, analysis=analysis)  # outside the lock: seconds
        with self._lock:
            return self._ensembles.setdefault(key, ensemble)

    def __contains__(self, key) -> bool:
        folder, device, analysis = key
        with self._lock:
            return (str(Path(folder).resolve()), str(device), analysis) in self._ensembles

    def clear(self) -> None:
        with self._lock:
            self._ensembles.clear()
