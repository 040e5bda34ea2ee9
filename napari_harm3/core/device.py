"""Pick the compute device: CUDA, then Apple MPS, then CPU, unless the user overrides."""

from __future__ import annotations

import torch

from .errors import Harm3Error

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def pick_device(choice: str = "auto"):
    """Return a ``torch.device``; ``choice`` is one of :data:`DEVICE_CHOICES` or e.g. ``cuda:1``."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise Harm3Error("device 'cuda' asked for, but no CUDA GPU is available here (use --device cpu or auto)")
    if choice == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise Harm3Error("device 'mps' asked for, but Apple MPS is not available here (use --device cpu or auto)")
    try:
        return torch.device(choice)
    except RuntimeError as exc:
        raise Harm3Error(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}") from exc


def available_devices() -> list:
    """(label, choice) of the devices this machine has, "auto" first: what a device menu offers."""
    found = [("automatic", "auto")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            found.append((f"CUDA GPU {index}: {torch.cuda.get_device_name(index)}", f"cuda:{index}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(("Apple MPS", "mps"))
    found.append(("CPU", "cpu"))
    return found
