"""The model zoo: one folder per trained model.

Layout of a model folder (``models/<name>/``)::

    card.json          machine-readable model card: kind, config, preprocessing contract,
                       inputs expected, bin edges (survival), training data, metrics,
                       intended use, licence, deviations
    README.md          the same card for people (rendered from card.json)
    weights/fold0.safetensors ...   one file per cross-validation fold (the ensemble)
    SHA256SUMS         ``sha256sum`` format, one line per weight file; checked on load
    recipe.sh          (demo models) the one command that re-creates the folder

Weights are safetensors only: nothing is unpickled, nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..errors import Harm3Error, InputFileError
from ..hashing import sha256_file
from ..resources import models_dir
from .card import CARD_FILE, ModelCard, WeightFile, parse_card, read_card_json

SUMS_FILE = "SHA256SUMS"
WEIGHTS_DIR = "weights"


@dataclass(frozen=True)
class ModelFolder:
    """A model folder read from disk: its parsed card and weight files (loaded on demand)."""

    path: Path
    card: ModelCard
    weight_files: tuple = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        return self.card.kind

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def sha256(self) -> dict:
        """{relative weight path: sha256} as recorded in SHA256SUMS."""
        return {w.file: w.sha256 for w in self.card.weights if w.sha256}

    def load_state_dicts(self, verify: bool = True) -> list:
        """One state dict per fold, in fold order; verifies the sha256 sums first."""
        sums = self.sha256()
        return [load_weights(p, expected_sha256=sums.get(_rel(self.path, p)) if verify else None)
                for p in self.weight_files]


def _rel(root: Path, path: Path) -> str:
    return str(Path(path).resolve().relative_to(Path(root).resolve()))


def save_weights(path, state_dict: dict, metadata: dict | None = None, overwrite: bool = True) -> str:
    """Write a state dict as safetensors atomically; returns its sha256."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return sha256_file(path)


def load_weights(path, expected_sha256: str | None = None) -> dict:
    """Load a safetensors state dict (CPU tensors); refuses pickles and checks the hash."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "weight file not found")
    if path.suffix != ".safetensors":
        raise InputFileError(path, "weights must be a .safetensors file (pickled checkpoints are not loaded)")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise InputFileError(path, f"sha256 mismatch (expected {expected_sha256[:12]}…, found {actual[:12]}…): the file was changed or damaged")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputFileError(path, f"not a readable safetensors file ({exc})") from exc


def read_sums(folder) -> dict:
    sums = Path(folder) / SUMS_FILE
    if not sums.is_file():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*").strip()] = digest
    return out


def write_model_folder(folder, card: dict, fold_state_dicts: list, overwrite: bool = False,
                       card_markdown: str | None = None) -> "ModelFolder":
    """Write weights (one safetensors file per fold), SHA256SUMS, card.json and README.md."""
    folder = Path(folder)
    if (folder / CARD_FILE).exists() and not overwrite:
        raise Harm3Error(f"{folder} already holds a model; pass --overwrite or choose another folder")
    (folder / WEIGHTS_DIR).mkdir(parents=True, exist_ok=True)
    sums = {}
    files = []
    for k, state in enumerate(fold_state_dicts):
        path = folder / WEIGHTS_DIR / f"fold{k}.safetensors"
        sums[_rel(folder, path)] = save_weights(path, state, {"fold": k, "kind": card.get("kind", "")})
        files.append(path)
    card = dict(card)
    card["weights"] = [{"file": name, "sha256": digest} for name, digest in sums.items()]
    with atomic_path(folder / SUMS_FILE, overwrite=True) as tmp:
        tmp.write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    with atomic_path(folder / "README.md", overwrite=True) as tmp:
        tmp.write_text(card_markdown if card_markdown is not None else render_card_markdown(card))
    # card.json last: its presence marks the folder complete
    with atomic_path(folder / CARD_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(card, indent=2, sort_keys=False, default=_json_default))
    return read_model_folder(folder)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_model_folder(folder) -> ModelFolder:
    """The folder's card (parsed once into a :class:`ModelCard`) and weight files."""
    if isinstance(folder, ModelFolder):
        return folder
    folder = Path(folder)
    raw = read_card_json(folder)
    files = tuple(sorted((folder / WEIGHTS_DIR).glob("fold*.safetensors"),
                         key=lambda p: int("".join(ch for ch in p.stem if ch.isdigit()) or 0)))
    if not files:
        raise InputFileError(folder, "model folder has no weights (weights/fold*.safetensors)")
    sums = read_sums(folder)
    weights = tuple(WeightFile(_rel(folder, p), sums.get(_rel(folder, p), "")) for p in files)
    return ModelFolder(path=folder, card=parse_card(folder, raw, weights), weight_files=files)


def list_models(root=None, kind: str | None = None) -> list:
    """Model folders found under ``root`` (default: the zoo), optionally of one kind."""
    root = Path(root) if root is not None else models_dir()
    found = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if (child / CARD_FILE).is_file():
                try:
                    model = read_model_folder(child)
                except Harm3Error:
                    continue
                if kind is None or model.kind == kind:
                    found.append(model)
    return found


def render_card_markdown(card: dict) -> str:
    """A readable model card from card.json (sections in a fixed order, rest appended)."""
    lines = [f"# {card.get('name', 'model')} — model card", ""]
    if card.get("warning"):
        lines += [f"> **{card['warning']}**", ""]
    order = ["kind", "version", "summary", "intended_use", "not_for", "inputs", "preprocessing",
             "config", "bin_edges_months", "training_data", "metrics", "deviations", "recipe",
             "licence", "citation", "weights"]
    keys = [k for k in order if k in card] + [k for k in card if k not in order and k not in ("name", "warning")]
    for key in keys:
        value = card[key]
        lines.append(f"## {key.replace('_', ' ').capitalize()}")
        lines.append("")
        if isinstance(value, (dict, list)):
            lines += ["```json", json.dumps(value, indent=2, default=_json_default), "```"]
        else:
            lines.append(str(value))
        lines.append("")
    return "\n".join(lines)


def model_readme(folder) -> str:
    """The model card for people: the folder's README.md, else one rendered from card.json."""
    path = Path(folder) / "README.md"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return render_card_markdown(dict(read_model_folder(folder).card.raw))
