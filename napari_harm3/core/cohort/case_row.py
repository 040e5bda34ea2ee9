"""The per-case work of a batch run: ``predict_case_row(case, models, device) -> CaseRow``.

The runner (:mod:`.runner`) takes this function as a parameter, so another implementation (the
case session) can replace it without touching the runner. This one calls the two predictors
the per-patient report calls (``core.predict.pcr.predict_case`` without Grad-CAM maps, and
``core.predict.survival.predict_case``); slide features are computed once and cached where the
predictors put them (the cohort's ``features/`` for HARM3-Fusion, ``<case>/features`` for
CrossFusion). Fold ensembles are loaded once per process and device.
"""

from __future__ import annotations

import threading

from ..errors import Harm3Error, one_line
from ..io.case import Case
from ..predict import pcr as pcr_predict
from ..predict import survival as survival_predict
from ..vocabulary import SEQUENCES
from .model_refs import CohortModels, ModelRef
from .rows import CaseRow

_ENSEMBLES: dict = {}
_ENSEMBLES_LOCK = threading.Lock()


def loaded_ensemble(ref: ModelRef, device: str = "auto"):
    """The fold ensemble of ``ref`` on ``device``, loaded once per process (weights checked on load)."""
    key = (ref.analysis, ref.path, ref.sha256, str(device))
    with _ENSEMBLES_LOCK:
        if key not in _ENSEMBLES:
            loader = pcr_predict.load_ensemble if ref.analysis == "pcr" else survival_predict.load_model
            _ENSEMBLES[key] = loader(ref.path, device)
        return _ENSEMBLES[key]


def case_missing_inputs(case: Case) -> tuple:
    """The inputs the case's manifest does not name, of the four sequences and the slide."""
    return tuple(s for s in SEQUENCES if s not in case.mri) + (("slide",) if case.slide is None else ())


def _failure(analysis: str, exc: Exception) -> str:
    text = one_line(exc)
    return f"{analysis}: {text}" if isinstance(exc, Harm3Error) else f"{analysis}: {type(exc).__name__}: {text}"


def predict_case_row(case: Case, models: CohortModels, device: str = "auto") -> CaseRow:
    """Both models' predictions of one case; an analysis that cannot run leaves its cells empty
    and says why in ``reason`` (status ``partial``, or ``failed`` when none ran)."""
    values = {"missing_inputs": case_missing_inputs(case)}
    reasons, ran = [], 0
    if models.pcr is not None:
        values.update(pcr_model=models.pcr.name, pcr_model_sha256=models.pcr.sha256)
        try:
            pred = pcr_predict.predict_case(loaded_ensemble(models.pcr, device), case, gradcam=False)
        except Exception as exc:  # noqa: BLE001 - one analysis failing must not lose the other
            reasons.append(_failure("pCR", exc))
        else:
            values.update(pcr_probability=float(pred.probability), pcr_spread=float(pred.spread),
                          pcr_folds=len(pred.fold_probabilities), missing_inputs=tuple(pred.missing_inputs))
            ran += 1
    if models.survival is not None:
        values.update(survival_model=models.survival.name, survival_model_sha256=models.survival.sha256)
        try:
            pred = survival_predict.predict_case(loaded_ensemble(models.survival, device), case)
        except Exception as exc:  # noqa: BLE001
            reasons.append(_failure("survival", exc))
        else:
            values.update(risk=float(pred.risk), risk_spread=float(pred.risk_spread), survival_folds=len(pred.fold_risks),
                          risk_threshold=pred.risk_threshold, risk_group=pred.risk_group)
            ran += 1
    status = "ok" if not reasons else ("partial" if ran else "failed")
    return CaseRow(case_id=str(case.case_id), status=status, reason="; ".join(reasons), **values)
