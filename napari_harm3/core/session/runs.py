"""A model run for one opened case: created by the session, executed anywhere, accepted by the session.

A :class:`PredictionRun` captures everything it computes from when it is created — the opened
case (immutable), the model folder, the device, the µm/px, the feature cache folder — so it can
run in a worker thread while the user opens another case. Its result carries the run's
:class:`~.case_data.CaseRef`; the session accepts a result only for the case still open
(:meth:`~.session.CaseSession.accept`), and cancels the runs of a case it closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Harm3Error, user_message
from ..models.zoo import ModelFolder
from ..predict import pcr as pcr_predictor
from ..predict import survival as survival_predictor
from ..progress import CancelToken, ProgressFn, scaled
from ..vocabulary import ANALYSIS_TITLES, FEATURES_DIR, not_run_note
from .case_data import CaseRef, OpenedCase, SlideScale
from .model_cache import ModelCache


def features_root(opened: OpenedCase, scale: SlideScale) -> Path:
    """Where a case's slide features are cached: ``<case folder>/features`` for both models, in
    a sub-folder named after the µm/px when it did not come from the slide itself (features made
    at one µm/px are never reused at another)."""
    root = Path(opened.case.root) / FEATURES_DIR
    if scale.mpp is not None and not scale.from_slide:
        root = root / f"mpp-{scale.mpp:g}"
    return root


@dataclass(frozen=True, eq=False)
class PredictionRun:
    analysis: str                      # "pcr" | "survival"
    opened: OpenedCase
    model: ModelFolder
    device: str
    scale: SlideScale
    models: ModelCache
    token: CancelToken = field(default_factory=CancelToken)
    gradcam: bool = True               # pCR: also the MRI maps (a batch leaves them out)

    @property
    def case_ref(self) -> CaseRef:
        return self.opened.ref

    @property
    def title(self) -> str:
        return ANALYSIS_TITLES[self.analysis]

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def execute(self, progress: ProgressFn | None = None):
        """Compute the prediction (slow; any thread). Raises ``Cancelled`` once :meth:`cancel` is called."""
        progress = self.token.wrap(progress)
        self.token.check()
        ensemble = self.models.get(self.model.path, self.device, self.analysis)
        root = features_root(self.opened, self.scale)
        if self.analysis == "pcr":
            return pcr_predictor.predict_case(ensemble, self.opened.case, progress=progress, features_root=root,
                                              volumes=self.opened.volumes, slide_mpp=self.scale.mpp,
                                              case_ref=self.case_ref, gradcam=self.gradcam)
        return survival_predictor.predict_case(ensemble, self.opened.case, progress=progress, features_root=root,
                                               slide_mpp=self.scale.mpp, case_ref=self.case_ref)


def predict_available(session, models: dict | None = None, progress: ProgressFn | None = None,
                      audience: str = "cli") -> list:
    """Run both analyses on the session's case where they can run; returns notes for those that
    could not (no model in the zoo, an input missing), in ``audience``'s words.

    ``models``: {analysis: model folder} chosen by the user — a folder of the wrong kind is an
    error, not a note (a typo must not silently drop an analysis)."""
    models = dict(models or {})
    notes = []
    analyses = ("pcr", "survival")
    for n, analysis in enumerate(analyses):
        explicit = models.get(analysis)
        if explicit is not None:
            model = session.model_for(analysis, explicit)
        else:
            try:
                model = session.model_for(analysis)
            except Harm3Error as exc:
                notes.append(not_run_note(analysis, user_message(exc, audience)))
                continue
        try:
            session.predict(analysis, model, progress=scaled(progress, n / len(analyses), (n + 1) / len(analyses)))
        except Harm3Error as exc:
            notes.append(not_run_note(analysis, user_message(exc, audience)))
    return notes
