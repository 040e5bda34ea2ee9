"""``harm3 import-crossfusion CKPT --backbone-dim D --out MODEL_DIR`` — a model folder from an authors' checkpoint.

CKPT is a state dict saved by the authors' CrossFusion code (``.pt``/``.pth``, read with
``torch.load(weights_only=True)``: nothing but tensors is unpickled) or a ``.safetensors`` file.
Several CKPT files make a fold ensemble. ``--bin-edges m1,m2,m3`` records the survival bin edges
in months, so S(t) can be drawn against time.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import Harm3Error
from ..hashing import sha256_file
from ..models.crossfusion import CITATION, DEVIATIONS, CrossFusion, load_state
from ..models.crossfusion_convert import infer_config, is_official_state_dict, official_to_ours, read_checkpoint
from ..models.zoo import write_model_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser("import-crossfusion", help="make a model folder from an authors' CrossFusion checkpoint",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT", help="authors' state dict(s): .pt/.pth or .safetensors (one per fold)")
    parser.add_argument("--backbone-dim", type=int, required=True, help="patch-feature size the checkpoint expects (e.g. 1024)")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--bin-edges", default=None, help="interior survival bin edges in months, comma-separated (e.g. 12.5,28,51)")
    parser.add_argument("--max-follow-up", type=float, default=None, help="longest follow-up in months (places the last bin in S(t))")
    parser.add_argument("--encoder", default="resnet50_trunc", help="encoder the features were made with (for the card)")
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--name", default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(handler=run)


def parse_edges(text: str | None):
    if not text:
        return None
    try:
        edges = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise Harm3Error(f"--bin-edges must be numbers separated by commas, got {text!r}") from exc
    if any(b <= a for a, b in zip(edges, edges[1:])) or any(e <= 0 for e in edges):
        raise Harm3Error(f"--bin-edges must be positive and increasing, got {text!r}")
    return edges


def import_checkpoints(paths, backbone_dim: int, out, bin_edges=None, max_follow_up=None, encoder="resnet50_trunc",
                       num_heads: int = 4, name: str | None = None, overwrite: bool = False):
    """Convert, check (strict load and one forward pass) and write the model folder."""
    states, cfg = [], None
    for path in paths:
        state = read_checkpoint(path)
        state = official_to_ours(state) if is_official_state_dict(state) else state
        this = infer_config(state, num_heads=num_heads)
        if this.backbone_dim != backbone_dim:
            raise Harm3Error(f"{path}: the checkpoint expects {this.backbone_dim}-d features, not --backbone-dim {backbone_dim}")
        if cfg is not None and this != cfg:
            raise Harm3Error(f"{path}: a different architecture from the first checkpoint")
        cfg = this
        model = load_state(CrossFusion(cfg), state).eval()
        with torch.no_grad():  # a smoke test: the converted weights run
            x = torch.zeros(1, 4, backbone_dim)
            if not torch.isfinite(model(x, x, x).hazards).all():
                raise Harm3Error(f"{path}: the converted model gives non-finite hazards")
        states.append(model.state_dict())
    if bin_edges is not None and len(bin_edges) != cfg.n_bins - 1:
        raise Harm3Error(f"--bin-edges needs {cfg.n_bins - 1} values for {cfg.n_bins} bins")
    card = {
        "name": name or Path(out).name, "kind": "crossfusion", "version": "1",
        "summary": "CrossFusion survival model imported from a checkpoint trained with the authors' code.",
        "intended_use": "Research use only. Performance is that of the original training; not validated here.",
        "inputs": {"encoder": encoder, "feature_dim": backbone_dim, "magnifications": [5, 10, 20], "patch_size_px": 256},
        "config": cfg.to_dict(),
        "training_data": {"source": "imported", "checkpoints": [{"file": Path(p).name, "sha256": sha256_file(p)} for p in paths]},
        "deviations": list(DEVIATIONS),
        "citation": CITATION,
    }
    if bin_edges is not None:
        card["bin_edges_months"] = list(bin_edges)
        card["max_follow_up_months"] = max_follow_up
    return write_model_folder(out, card, states, overwrite=overwrite)


def run(args) -> int:
    folder = import_checkpoints(args.checkpoints, args.backbone_dim, args.out, parse_edges(args.bin_edges),
                                args.max_follow_up, args.encoder, args.num_heads, args.name, args.overwrite)
    print(f"imported {len(folder.weight_files)} checkpoint(s) into {folder.path}")
    if folder.card.bin_edges_months is None:
        print("note: no --bin-edges given; risk works, S(t) against months does not")
    return 0
