"""Which model folders a batch run uses: plain references (name, folder, weight sha256).

A :class:`CohortModels` is small and picklable, so it travels to Dask workers; each worker
loads the fold ensembles from the folders once (:mod:`.case_row`). Models come from explicit
folders, else from the zoo by card kind (``vocabulary.MODEL_KINDS``); an analysis whose model
is absent is not run, and :func:`choose_models` says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import Harm3Error
from ..models.zoo import ModelFolder, list_models, read_model_folder
from ..resources import models_dir
from ..vocabulary import ANALYSES, MODEL_KINDS, analysis_of_kind


@dataclass(frozen=True)
class ModelRef:
    """One model folder as a batch run records it."""

    analysis: str      # "pcr" | "survival"
    name: str          # the card's name
    path: str          # the folder (absolute)
    sha256: str        # weights_sha256 of the folder


@dataclass(frozen=True)
class CohortModels:
    """The models of a batch run; ``None`` = that analysis is not run."""

    pcr: ModelRef | None = None
    survival: ModelRef | None = None

    def __post_init__(self):
        if self.pcr is None and self.survival is None:
            raise Harm3Error("no model to run: give --pcr-model, --survival-model or --models, "
                             "or put a model folder in the zoo")

    @property
    def refs(self) -> tuple:
        return tuple(r for r in (self.pcr, self.survival) if r is not None)


def weights_sha256(folder: ModelFolder) -> str:
    """One digest for a fold ensemble: sha256 of the sorted ``<sha256>  <file>`` lines of the
    folder's SHA256SUMS (for the zoo's folders, ``sha256sum SHA256SUMS`` gives the same)."""
    sums = folder.sha256()
    if not sums:
        raise Harm3Error(f"{folder.path}: the model folder has no SHA256SUMS; its weights cannot be identified")
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def model_ref(folder, analysis: str | None = None) -> ModelRef:
    """A :class:`ModelRef` of a model folder (a path or a ``ModelFolder``), checked for ``analysis``."""
    folder = folder if isinstance(folder, ModelFolder) else read_model_folder(folder)
    serves = analysis_of_kind(folder.kind)
    if serves is None:
        raise Harm3Error(f"{folder.path} holds a {folder.kind!r} model, which serves no analysis here "
                         f"(kinds: {', '.join(k for kinds in MODEL_KINDS.values() for k in kinds)})")
    if analysis is not None and serves != analysis:
        raise Harm3Error(f"{folder.path} holds a {folder.kind!r} ({serves}) model, not a {analysis} model")
    return ModelRef(serves, folder.name, str(Path(folder.path).resolve()), weights_sha256(folder))


def choose_models(pcr_model=None, survival_model=None, models=None, zoo=None) -> tuple:
    """(CohortModels, notes).

    ``models``: folders of any kind, each used for the analysis its card serves; then only they
    run. Otherwise ``pcr_model`` / ``survival_model`` where given and the zoo's model of the
    other analysis (the first by folder name, with a note when there are several).
    """
    chosen, notes = {}, []
    if models:
        if pcr_model is not None or survival_model is not None:
            raise Harm3Error("--models names every model of the run; do not combine it with --pcr-model/--survival-model")
        for folder in models:
            ref = model_ref(folder)
            if ref.analysis in chosen:
                raise Harm3Error(f"two {ref.analysis} models given ({chosen[ref.analysis].path} and {ref.path}); "
                                 "a batch run takes one of each")
            chosen[ref.analysis] = ref
        return CohortModels(**chosen), notes
    explicit = {"pcr": pcr_model, "survival": survival_model}
    root = Path(zoo) if zoo is not None else models_dir()
    for analysis in ANALYSES:
        if explicit[analysis] is not None:
            chosen[analysis] = model_ref(explicit[analysis], analysis)
            continue
        found = [m for m in list_models(root) if m.kind in MODEL_KINDS[analysis]]
        if not found:
            notes.append(f"no {analysis} model in the zoo ({root}): {analysis} not predicted")
            continue
        if len(found) > 1:
            notes.append(f"{len(found)} {analysis} models in the zoo; using {found[0].name}")
        chosen[analysis] = model_ref(found[0], analysis)
    return CohortModels(**chosen), notes
