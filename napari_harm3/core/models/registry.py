"""One model registry for both architectures: build a model, load a model folder's fold ensemble.

- :func:`create_model` ``(kind, name=None, weights=None, **overrides)`` — the one constructor
  (timm's idea): ``kind`` is a model-card kind (``harm3-fusion`` / ``crossfusion``), ``name`` a
  named config of that architecture, ``weights`` a state dict or a safetensors file.
- :func:`load_ensemble` ``(folder, device)`` — a zoo folder's card (parsed once, see
  :mod:`.card`) and its K fold models on ``device``, as one :class:`Ensemble` whatever the kind.
- :func:`zoo_models` / :func:`select_model` — the zoo's folders of an analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..device import pick_device
from ..errors import Harm3Error, InputFileError
from ..mri.prep import MriPrepConfig
from ..resources import models_dir
from ..vocabulary import CROSSFUSION_KIND, CROSSFUSION_MAGNIFICATIONS, HARM3_KIND, MODEL_KINDS
from . import crossfusion, harm3_fusion
from .card import ModelCard
from .zoo import ModelFolder, list_models, read_model_folder


def create_model(kind: str, name: str | None = None, weights=None, **overrides):
    """A model of architecture ``kind`` from its named config, with overrides and optional weights."""
    if kind in MODEL_KINDS["pcr"]:
        return harm3_fusion.create_model(name or "harm3_fusion", weights=weights, **overrides)
    if kind == CROSSFUSION_KIND:
        return crossfusion.create_model(name or "crossfusion", weights=weights, **overrides)
    raise Harm3Error(f"unknown model kind {kind!r}; known: {HARM3_KIND}, {CROSSFUSION_KIND}")


@dataclass(frozen=True, eq=False)
class Ensemble:
    """The fold models of one model folder on one device, with the card they came from."""

    card: ModelCard
    models: tuple
    device: str
    harm3_config: object = None          # harm3_fusion.Harm3Config (HARM3-Fusion only)
    prep_config: MriPrepConfig | None = None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def analysis(self) -> str | None:
        return self.card.analysis


def _harm3_configs(card: ModelCard) -> tuple:
    try:
        model_config = harm3_fusion.Harm3Config.from_dict(dict(card.config["model"]))
        prep = dict(card.config.get("preprocessing", {}))
        prep_config = MriPrepConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in prep.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(card.path, f"the model card's config is not a HARM3-Fusion config ({exc})") from None
    return model_config, prep_config


def load_ensemble(folder, device="auto", analysis: str | None = None) -> Ensemble:
    """The fold ensemble of a model folder on ``device`` ("auto", "cpu", "cuda[:N]", "mps" or a
    torch.device); ``analysis`` ("pcr"/"survival"), when given, must be what the card serves."""
    folder = read_model_folder(folder)
    card = folder.card
    if analysis is not None and card.analysis != analysis:
        raise InputFileError(folder.path, f"holds a {card.kind!r} model, not a model for {analysis} "
                                          f"({', '.join(MODEL_KINDS[analysis])})")
    torch_device = pick_device(device) if isinstance(device, str) else device
    states = folder.load_state_dicts()
    if card.kind in MODEL_KINDS["pcr"]:
        model_config, prep_config = _harm3_configs(card)
        models = tuple(harm3_fusion.create_model(config=model_config, weights=s).to(torch_device).eval()
                       for s in states)
        return Ensemble(card, models, str(torch_device), model_config, prep_config)
    if card.kind == CROSSFUSION_KIND:
        if card.magnifications != CROSSFUSION_MAGNIFICATIONS:
            raise InputFileError(folder.path, f"the card asks for magnifications {list(card.magnifications)}; "
                                              "CrossFusion here takes 5x, 10x and 20x")
        config = crossfusion.CrossFusionConfig.from_dict(dict(card.config))
        models = tuple(crossfusion.load_state(crossfusion.CrossFusion(config), s).eval().to(torch_device)
                       for s in states)
        return Ensemble(card, models, str(torch_device))
    raise InputFileError(folder.path, f"unknown model kind {card.kind!r}")


def zoo_models(analysis: str, root=None) -> list:
    """The zoo's :class:`ModelFolder` s serving ``analysis``, in folder order."""
    return [m for m in list_models(root) if m.card.analysis == analysis]


def select_model(analysis: str, explicit=None, root=None) -> tuple:
    """(ModelFolder or None, note): ``explicit`` (must serve ``analysis``), else the zoo's first.

    An explicit folder of another kind is an error (a typo must not silently drop an analysis);
    an empty zoo gives None and the reason."""
    if explicit is not None:
        folder = read_model_folder(explicit)
        if folder.card.analysis != analysis:
            raise InputFileError(folder.path, f"holds a {folder.kind!r} model, not a {analysis} model "
                                              f"({', '.join(MODEL_KINDS[analysis])})")
        return folder, ""
    zoo = Path(root) if root is not None else models_dir()
    found = zoo_models(analysis, zoo)
    if not found:
        return None, f"no {analysis} model in the model zoo ({zoo}); choose a model folder"
    note = "" if len(found) == 1 else f"{len(found)} {analysis} models in the zoo; used {found[0].name}"
    return found[0], note


__all__ = ["Ensemble", "ModelCard", "ModelFolder", "create_model", "load_ensemble", "select_model", "zoo_models"]
