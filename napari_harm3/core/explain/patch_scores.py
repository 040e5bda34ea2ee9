"""Per-patch scores over a slide: the one result type for every slide map of both models.

A :class:`PatchScores` holds, for one map (CrossFusion's 5×/10×/20×/final attention, or
HARM3-Fusion's pooling attention), each patch's level-0 top-left corner, its **footprint** (the
side in level-0 pixels it covers: a 256-px patch at 5× on a 20× slide covers 1024), the
magnification it was read at, and its score in [0, 1]. The painter (:mod:`.heatmap`), the
viewer's layers and clicks, the report's thumbnails and top patches, and the DICOM export all
read this one object; nobody infers a footprint from coordinate spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Harm3Error


@dataclass(frozen=True, eq=False)
class PatchScores:
    key: str                 # "5x" | "10x" | "20x" | "final" | "pooling" (core.vocabulary)
    label: str               # what a person reads, e.g. "CrossFusion 5x attention"
    coords: np.ndarray       # (N, 2) int64 level-0 (x, y) of each patch's top-left corner
    scores: np.ndarray       # (N,) float32 in [0, 1]
    footprint: int           # patch side in level-0 pixels
    magnification: int       # magnification the patches were read at

    def __post_init__(self):
        coords = np.asarray(self.coords, dtype=np.int64).reshape(-1, 2)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(coords) != len(scores):
            raise Harm3Error(f"{self.label}: {len(scores)} scores for {len(coords)} patch positions")
        if int(self.footprint) < 1:
            raise Harm3Error(f"{self.label}: a patch footprint must be at least one level-0 pixel")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "footprint", int(self.footprint))
        object.__setattr__(self, "magnification", int(self.magnification))

    def __len__(self) -> int:
        return int(self.scores.size)

    def ranks(self) -> np.ndarray:
        """Each patch's percentile rank among the slide's patches, in [0, 1] (ties share the mean
        rank; one patch gets 1). This is what heatmaps show: see :mod:`.heatmap`."""
        return percentile_ranks(self.scores)

    def patch_at(self, x: float, y: float) -> int | None:
        """Index of the patch whose footprint holds level-0 (x, y); the highest-scoring one where
        footprints overlap; None outside every patch."""
        inside = ((self.coords[:, 0] <= x) & (x < self.coords[:, 0] + self.footprint)
                  & (self.coords[:, 1] <= y) & (y < self.coords[:, 1] + self.footprint))
        hits = np.flatnonzero(inside)
        if not hits.size:
            return None
        return int(hits[np.argmax(self.scores[hits])])

    def top(self, k: int) -> np.ndarray:
        """Indices of the ``k`` highest scores, best first (ties: bag order)."""
        return np.argsort(-self.scores.astype(np.float64), kind="stable")[: max(0, int(k))]

    def to_json_dict(self, top_k: int = 10) -> dict:
        return {"key": self.key, "label": self.label, "patches": len(self), "footprint_level0_px": self.footprint,
                "magnification": self.magnification,
                "top": [{"x": int(self.coords[i, 0]), "y": int(self.coords[i, 1]), "score": float(self.scores[i])}
                        for i in self.top(top_k)]}


def percentile_ranks(scores) -> np.ndarray:
    """Scores → percentile rank in [0, 1] (ties share a rank), CLAM's heatmap convention:
    attention is long-tailed, ranks show where the model looked most without one patch washing
    out the rest. A single patch gets 1."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size <= 1:
        return np.ones_like(scores)
    order = np.sort(scores)
    low = np.searchsorted(order, scores, side="left")
    high = np.searchsorted(order, scores, side="right") - 1
    return (low + high) / 2.0 / (scores.size - 1)
