"""The per-case work of a batch run: ``predict_case_row(case, models, device) -> CaseRow``.

The runner (:mod:`.runner`) takes this function as a parameter. It opens the case in a case
session — the same object and code path as the viewer and ``harm3 report``: volumes through the
registration seam, the case's one µm/px, slide features cached in ``<case>/features`` for both
models — and runs the two models there (pCR without its MRI maps, which a table does not show).
One session per process and thread keeps the loaded fold ensembles for the whole batch.
"""

from __future__ import annotations

import threading

from ..errors import Harm3Error, one_line
from ..io.case import Case
from ..session import CaseSession
from ..vocabulary import SEQUENCES
from .model_refs import CohortModels
from .rows import CaseRow

_LOCAL = threading.local()


def batch_session(device: str = "auto") -> CaseSession:
    """This thread's case session for batch work (its model cache lives as long as the process)."""
    session = getattr(_LOCAL, "session", None)
    if session is None or session.device != device:
        session = _LOCAL.session = CaseSession(device=device)
    return session


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
    session = batch_session(device)
    try:
        session.open(case)
    except Harm3Error as exc:
        return CaseRow(case_id=str(case.case_id), status="failed", reason=one_line(exc), **values)
    try:
        if models.pcr is not None:
            values.update(pcr_model=models.pcr.name, pcr_model_sha256=models.pcr.sha256)
            try:
                pred = session.predict("pcr", models.pcr.path, gradcam=False)
            except Exception as exc:  # noqa: BLE001 - one analysis failing must not lose the other
                reasons.append(_failure("pCR", exc))
            else:
                values.update(pcr_probability=float(pred.probability), pcr_spread=float(pred.spread),
                              pcr_folds=len(pred.fold_probabilities), missing_inputs=tuple(pred.missing_inputs))
                ran += 1
        if models.survival is not None:
            values.update(survival_model=models.survival.name, survival_model_sha256=models.survival.sha256)
            try:
                pred = session.predict("survival", models.survival.path)
            except Exception as exc:  # noqa: BLE001
                reasons.append(_failure("survival", exc))
            else:
                values.update(risk=float(pred.risk), risk_spread=float(pred.risk_spread),
                              survival_folds=len(pred.fold_risks), risk_threshold=pred.risk_threshold,
                              risk_group=pred.risk_group)
                ran += 1
    finally:
        session.close()
    status = "ok" if not reasons else ("partial" if ran else "failed")
    return CaseRow(case_id=str(case.case_id), status=status, reason="; ".join(reasons), **values)
