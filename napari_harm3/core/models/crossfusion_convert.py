"""Map the authors' CrossFusion parameter names onto ours, and read their checkpoints safely.

The authors' implementation names its modules ``{c,s,f}_lin_proj``, ``{c,f}_cross_attn``,
``{c,f,s,final}_transformer.{pre,post}_layers.layers.i.{0..3}``, ``conv_processor``,
``mlp_head`` …; ours are ``project.*``, ``cross.*``, ``branch.*``, ``final``, ``fusion``, ``head``.
A checkpoint saved with their code is a plain state dict in a ``.pt`` file; it is read with
``torch.load(weights_only=True)``, which refuses to unpickle anything but tensors and plain
containers.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import Harm3Error, InputFileError
from .zoo import load_weights

_SCALE = {"c": "coarse", "s": "source", "f": "fine"}
_TRANSFORMER = {"c_transformer": "branch.coarse", "s_transformer": "branch.source",
                "f_transformer": "branch.fine", "final_transformer": "final"}
_ATTN = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "out"}
_FFN = {"0": "fc1", "3": "fc2"}
_BLOCK_PART = {"0": "norm1", "2": "norm2"}
_PPEG = {"proj": "conv7", "proj1": "conv5", "proj2": "conv3"}
_FUSION_CONV = {"proj": "conv7", "proj1": "conv5", "proj2": "conv3", "x_proj": "conv1"}

_RULES = [
    (r"cls_token", lambda m: "cls_token"),
    (r"([csf])_lin_proj\.0\.(weight|bias)", lambda m: f"project.{_SCALE[m[1]]}.0.{m[2]}"),
    (r"([csf])_lin_proj\.1\.(weight|bias)", lambda m: f"project.{_SCALE[m[1]]}.1.{m[2]}"),
    (r"([cf])_cross_attn\.scale_embeddings", lambda m: f"cross.{_SCALE[m[1]]}.scale_embedding"),
    (r"([cf])_cross_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
     lambda m: f"cross.{_SCALE[m[1]]}.attn.{_ATTN[m[2]]}.{m[3]}"),
    (r"([cf])_cross_attn_ln\.(weight|bias)", lambda m: f"cross.{_SCALE[m[1]]}.norm.{m[2]}"),
    (r"([cf])_cross_attn_ffn\.net\.([03])\.(weight|bias)", lambda m: f"cross.{_SCALE[m[1]]}.ffn.{_FFN[m[2]]}.{m[3]}"),
    (r"(c_transformer|s_transformer|f_transformer|final_transformer)\.(pre|post)_layers\.layers\.(\d+)\.([02])\.(weight|bias)",
     lambda m: f"{_TRANSFORMER[m[1]]}.{_blocks(m[2])}.{m[3]}.{_BLOCK_PART[m[4]]}.{m[5]}"),
    (r"(c_transformer|s_transformer|f_transformer|final_transformer)\.(pre|post)_layers\.layers\.(\d+)\.1\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
     lambda m: f"{_TRANSFORMER[m[1]]}.{_blocks(m[2])}.{m[3]}.attn.{_ATTN[m[4]]}.{m[5]}"),
    (r"(c_transformer|s_transformer|f_transformer|final_transformer)\.(pre|post)_layers\.layers\.(\d+)\.3\.net\.([03])\.(weight|bias)",
     lambda m: f"{_TRANSFORMER[m[1]]}.{_blocks(m[2])}.{m[3]}.ffn.{_FFN[m[4]]}.{m[5]}"),
    (r"(c_transformer|s_transformer|f_transformer|final_transformer)\.ppeg\.(proj|proj1|proj2)\.(weight|bias)",
     lambda m: f"{_TRANSFORMER[m[1]]}.pos.{_PPEG[m[2]]}.{m[3]}"),
    (r"([csf])_transformer_ln\.(weight|bias)", lambda m: f"branch.{_SCALE[m[1]]}.norm.{m[2]}"),
    (r"final_ln\.(weight|bias)", lambda m: f"final.norm.{m[1]}"),
    (r"conv_processor\.conv3d\.(weight|bias)", lambda m: f"fusion.mix.{m[1]}"),
    (r"conv_processor\.conv_block\.0\.(proj|proj1|proj2|x_proj)\.(weight|bias)",
     lambda m: f"fusion.{_FUSION_CONV[m[1]]}.{m[2]}"),
    (r"conv_processor\.linear\.0\.(weight|bias)", lambda m: f"fusion.linear.{m[1]}"),
    (r"conv_processor\.linear\.1\.(weight|bias)", lambda m: f"fusion.norm.{m[1]}"),
    (r"mlp_head\.0\.(weight|bias)", lambda m: f"head.{m[1]}"),
]
_COMPILED = [(re.compile(pattern + r"\Z"), fn) for pattern, fn in _RULES]


def _blocks(which: str) -> str:
    return "blocks_before" if which == "pre" else "blocks_after"


def official_name(name: str) -> str | None:
    """Our parameter name for one of the authors' names, or None when it is not theirs."""
    for pattern, fn in _COMPILED:
        m = pattern.match(name)
        if m:
            return fn(m)
    return None


def is_official_state_dict(state: dict) -> bool:
    """True when the keys follow the authors' naming (e.g. ``mlp_head.0.weight``)."""
    return any(k in state for k in ("mlp_head.0.weight", "final_ln.weight", "conv_processor.conv3d.weight"))


def official_to_ours(state: dict) -> dict:
    """Rename an authors' state dict to ours; unknown keys are an error (nothing dropped silently)."""
    out, unknown = {}, []
    for key, value in state.items():
        ours = official_name(key)
        if ours is None:
            unknown.append(key)
        else:
            out[ours] = value
    if unknown:
        raise Harm3Error(f"not a CrossFusion checkpoint: {len(unknown)} unknown parameter names, e.g. {unknown[0]!r}")
    return out


def infer_config(state: dict, **overrides):
    """A :class:`CrossFusionConfig` whose widths fit an authors' (or our) state dict."""
    from .crossfusion import CrossFusionConfig  # lazy: import cycle (crossfusion.load_state imports this module)

    if is_official_state_dict(state):
        state = official_to_ours(state)
    embed = state["head.weight"].shape[1]
    n_bins = state["head.weight"].shape[0]
    proj = state.get("project.source.0.weight")
    backbone = proj.shape[1] if proj is not None else embed
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("final.blocks_before."))
    scales = "all" if "cross.fine.scale_embedding" in state else "source"
    fusion = "conv" if "fusion.mix.weight" in state else "linear"
    values = dict(backbone_dim=backbone, embed_dim=embed, n_bins=n_bins, num_layers=layers,
                  scales=scales, fusion=fusion)
    values.update(overrides)
    return CrossFusionConfig(**values)


def read_checkpoint(path) -> dict:
    """An authors' checkpoint as a state dict: ``.pt``/``.pth`` (``weights_only=True``) or ``.safetensors``.

    A dict wrapping the state dict under ``state_dict`` / ``model`` is unwrapped; a
    DataParallel ``module.`` prefix is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "checkpoint not found")
    if path.suffix == ".safetensors":
        state = load_weights(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors, refused globals, truncated files
            raise InputFileError(path, f"not a plain state-dict checkpoint (loaded with weights_only=True): "
                                       f"{str(exc).splitlines()[0]}") from exc
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputFileError(path, "checkpoint is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}
