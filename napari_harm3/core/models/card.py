"""The model card, parsed once: a frozen :class:`ModelCard` read from a model folder's ``card.json``.

Everything the package needs from a card — kind and analysis, name and version, the feature
and preprocessing contracts, thresholds, survival bin edges, the training cohort's risk
reference, the weights' sha256 — is an attribute here, checked when the card is read. Code
elsewhere never digs into the card's JSON; :attr:`ModelCard.raw` is kept only to render the
card for people and to record it in reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..errors import InputFileError
from ..vocabulary import CROSSFUSION_MAGNIFICATIONS, analysis_of_kind

CARD_FILE = "card.json"


@dataclass(frozen=True)
class WeightFile:
    file: str        # path relative to the model folder
    sha256: str      # as recorded in SHA256SUMS ("" when the folder has no sums)


@dataclass(frozen=True, eq=False)
class ModelCard:
    path: Path                     # the model folder
    kind: str                      # "harm3-fusion" | "crossfusion"
    analysis: str | None           # "pcr" | "survival" (core.vocabulary.MODEL_KINDS)
    name: str
    version: str
    summary: str                   # one paragraph for reports: warning first, then summary/intended use
    config: Mapping                # architecture (and training) config as written by training
    inputs: Mapping                # the input contract
    encoder: str                   # slide feature encoder the model was trained on
    feature_dim: int | None
    weights: tuple                 # (WeightFile, ...) in fold order
    youden_threshold: float | None = None     # pCR: mean of the folds' Youden thresholds
    risk_threshold: float | None = None       # survival: median training-cohort risk ("high" if ≥)
    risk_reference: Mapping | None = None     # survival: training-cohort risk quantiles
    t_max_months: float | None = None
    bin_edges_months: tuple | None = None     # survival: per fold, the interior edges
    max_follow_up_months: tuple | None = None
    magnifications: tuple = CROSSFUSION_MAGNIFICATIONS
    patch_size_px: int = 256
    tissue_preset: str = "biopsy"
    raw: Mapping = field(default_factory=dict)

    @property
    def weight_paths(self) -> tuple:
        return tuple(self.path / w.file for w in self.weights)

    def fold_bin_edges(self) -> list | None:
        """[(interior edges, t_max)] per fold; None when the card has no bin edges."""
        if self.bin_edges_months is None:
            return None
        n = len(self.weights)
        edges = self.bin_edges_months
        t_max = self.max_follow_up_months or (self.t_max_months,) * n
        if len(edges) != n or len(t_max) != n:
            raise InputFileError(self.path, f"the model card lists bin edges for {len(edges)} folds but the "
                                            f"folder has {n} weight files")
        return [(np.asarray(e, dtype=float), t) for e, t in zip(edges, t_max)]

    def risk_percentile(self, risk: float) -> float | None:
        """Where ``risk`` falls in the training cohort (0–100), interpolated between the card's
        quantiles (min, q25, median, q75, max); None without a reference."""
        ref = self.risk_reference or {}
        keys = [("min", 0.0), ("q25", 25.0), ("median", 50.0), ("q75", 75.0), ("max", 100.0)]
        points = [(float(ref[k]), p) for k, p in keys if ref.get(k) is not None]
        if len(points) < 2:
            return None
        xs, ps = zip(*sorted(points))
        return float(np.interp(risk, xs, ps))


def _float(value):
    return None if value is None else float(value)


def _per_fold(value, n: int):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        return tuple(tuple(float(v) for v in fold) for fold in value)
    if isinstance(value, (list, tuple)):
        return (tuple(float(v) for v in value),) * n
    return (float(value),) * n


def _summary(card: dict) -> str:
    summary = str(card.get("summary") or card.get("intended_use") or "")
    return f"{card['warning']} {summary}".strip() if card.get("warning") else summary


def parse_card(folder: Path, card: dict, weights: tuple) -> ModelCard:
    """A :class:`ModelCard` from the JSON mapping of ``folder/card.json``."""
    if not isinstance(card, dict) or not card.get("kind"):
        raise InputFileError(folder / CARD_FILE, "a model card needs a 'kind' (harm3-fusion or crossfusion)")
    kind = str(card["kind"])
    inputs = card.get("inputs") or {}
    slide = inputs.get("slide", inputs) if isinstance(inputs.get("slide"), dict) else inputs
    folds = (card.get("metrics") or {}).get("folds") or []
    youden = [f.get("threshold_youden") for f in folds if isinstance(f, dict) and f.get("threshold_youden") is not None]
    n = len(weights)
    max_follow = card.get("max_follow_up_months")
    try:
        return ModelCard(
            path=folder, kind=kind, analysis=analysis_of_kind(kind), name=str(card.get("name", folder.name)),
            version=str(card.get("version", "0")), summary=_summary(card),
            config=MappingProxyType(dict(card.get("config") or {})), inputs=MappingProxyType(dict(inputs)),
            encoder=str(slide.get("encoder", "texture_stats")),
            feature_dim=None if slide.get("feature_dim") is None else int(slide["feature_dim"]),
            weights=weights, youden_threshold=float(np.mean(youden)) if youden else None,
            risk_threshold=_float(card.get("risk_threshold")),
            risk_reference=MappingProxyType(dict(card["risk_reference"])) if card.get("risk_reference") else None,
            t_max_months=_float(card.get("t_max_months")),
            bin_edges_months=_per_fold(card.get("bin_edges_months"), n),
            max_follow_up_months=None if max_follow is None else tuple(
                _float(v) for v in (max_follow if isinstance(max_follow, (list, tuple)) else [max_follow] * n)),
            magnifications=tuple(int(m) for m in inputs.get("magnifications", CROSSFUSION_MAGNIFICATIONS)),
            patch_size_px=int(inputs.get("patch_size_px", slide.get("patch_size", 256))),
            tissue_preset=str(inputs.get("tissue_preset", "biopsy")),
            raw=MappingProxyType(card),
        )
    except (TypeError, ValueError) as exc:
        raise InputFileError(folder / CARD_FILE, f"the model card has a malformed field ({exc})") from None


def read_card_json(folder: Path) -> dict:
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise InputFileError(folder, f"not a model folder (no {CARD_FILE}); a model folder holds card.json, "
                                     "weights/ and SHA256SUMS")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"model card is not valid JSON ({exc.msg}, line {exc.lineno})") from None
