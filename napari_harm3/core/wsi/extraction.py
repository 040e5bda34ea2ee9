"""Patch features of one slide: background readers feed batches to the encoder.

Reading and decoding run in a thread pool (OpenSlide and OpenCV release the GIL), ahead of
the encoder by a bounded number of patches, so the encoder rarely waits for the slide.
At level 0, vertically adjacent patches (CLAM's order runs down a column) are read as one
strip per ``read_region`` call and cut, which decodes each tile once and saves call
overhead. The encoder runs as a copy prepared for inference (BatchNorm folded, channels-last,
optionally compiled; :mod:`.encoder_inference`), same features up to float rounding. Batches
go to the device through pinned memory with mixed precision on CUDA; the CPU path is the same
code. Every batch is reported through ``progress`` (a safe point to cancel) and handed to
``on_batch`` (so a resumable sink can store it).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from ..progress import report
from .encoder_inference import inference_encoder
from .magnification import MagnificationPlan

#: most patches read by one ``read_region`` call (a vertical strip at level 0)
MAX_STRIP = 8
#: most patches the encoder sees at once on a CPU: the activations of a larger batch spill out
#: of the caches (ResNet50-trunc, one thread, CPU time: 4.9-5.1 patches/s at 4-16, 4.6 at 64)
CPU_CHUNK = 16


def patch_runs(coords: np.ndarray, size0: int, max_run: int = MAX_STRIP) -> list:
    """Split ``coords`` into (start, stop) runs of vertically adjacent patches (same x, y += size0)."""
    n = len(coords)
    if n == 0:
        return []
    adjacent = np.zeros(n, dtype=bool)
    if n > 1:
        adjacent[1:] = (coords[1:, 0] == coords[:-1, 0]) & (coords[1:, 1] - coords[:-1, 1] == size0)
    breaks = np.flatnonzero(~adjacent).tolist() + [n]
    runs = []
    for start, stop in zip(breaks[:-1], breaks[1:]):
        runs.extend((s, min(s + max_run, stop)) for s in range(start, stop, max_run))
    return runs


class PatchReader:
    """Reads patches of a plan from a slide; one slide handle per thread."""

    def __init__(self, slide_factory, plan: MagnificationPlan, strips: bool = True):
        self._factory = slide_factory
        self._local = threading.local()
        self.plan = plan
        self.strips = strips and plan.read_level == 0

    def _slide(self):
        slide = getattr(self._local, "slide", None)
        if slide is None:
            slide = self._local.slide = self._factory()
        return slide

    def _finish(self, region: np.ndarray) -> np.ndarray:
        """Resize a read region to the output patch size (area interpolation)."""
        size = self.plan.patch_size
        if region.shape[0] != size or region.shape[1] != size:
            region = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)
        return region

    def read(self, coords: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S, 3) for ``coords`` (a run when ``strips``: same x, adjacent y)."""
        plan, slide = self.plan, self._slide()
        n, read = len(coords), plan.read_size
        if self.strips and n > 1:
            strip = slide.read_region((int(coords[0, 0]), int(coords[0, 1])), 0, (read, read * n))
            return np.stack([self._finish(strip[i * read:(i + 1) * read]) for i in range(n)])
        return np.stack([self._finish(slide.read_region((int(x), int(y)), plan.read_level, (read, read)))
                         for x, y in coords])


def iter_patch_batches(reader: PatchReader, coords: np.ndarray, batch_size: int, start: int = 0,
                       workers: int = 2, lookahead: int | None = None):
    """Yield (first_index, uint8 (B, S, S, 3)) batches in order, read by ``workers`` threads."""
    coords = np.asarray(coords)[start:]
    max_run = MAX_STRIP if reader.strips else 1
    runs = patch_runs(coords, reader.plan.patch_size_level0, max_run) if reader.strips else \
        [(i, min(i + 4, len(coords))) for i in range(0, len(coords), 4)]
    lookahead = lookahead or max(2, 2 * batch_size // max(1, max_run))
    pending, pieces, ready, first = deque(), [], 0, start
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="harm3-read")
    try:
        run_iter = iter(runs)
        for run in run_iter:
            pending.append(executor.submit(reader.read, coords[run[0]:run[1]]))
            if len(pending) >= lookahead:
                break
        while pending:
            piece = pending.popleft().result()
            nxt = next(run_iter, None)
            if nxt is not None:
                pending.append(executor.submit(reader.read, coords[nxt[0]:nxt[1]]))
            pieces.append(piece)
            ready += len(piece)
            while ready >= batch_size or (not pending and ready):
                stacked = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
                batch, rest = stacked[:batch_size], stacked[batch_size:]
                pieces, ready = ([rest] if len(rest) else []), len(rest)
                yield first, batch
                first += len(batch)
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def encode_batches(encoder, batches, device, on_batch, progress=None, total: int | None = None,
                   label: str = "") -> None:
    """Run ``encoder`` on uint8 batches; ``on_batch(first_index, features float32 (B, D))``.

    On a CPU the encoder takes a batch :data:`CPU_CHUNK` patches at a time."""
    use_cuda = device.type == "cuda"
    # mixed precision for learned encoders on CUDA; hand-crafted statistics stay in float32
    mixed = use_cuda and getattr(getattr(encoder, "spec", None), "needs_weights", True)
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if mixed else _nullcontext()
    with torch.inference_mode(), autocast:
        for first, batch in batches:
            tensor = torch.from_numpy(batch)  # (B, S, S, 3) uint8
            if use_cuda:
                tensor = tensor.pin_memory().to(device, non_blocking=True)
            chunks = (tensor,) if use_cuda else tensor.split(CPU_CHUNK)
            features = torch.cat([encoder(chunk).float() for chunk in chunks]).cpu().numpy()  # (B, D)
            on_batch(first, features)
            if total:
                report(progress, (first + len(batch)) / total, f"{label}{first + len(batch)}/{total} patches")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def extract_features(slide_factory, coords: np.ndarray, plan: MagnificationPlan, encoder,
                     batch_size: int = 64, device=None, workers: int = 2, start: int = 0,
                     on_batch=None, progress=None, label: str = "", strips: bool = True,
                     compile: bool = False) -> np.ndarray | None:
    """Encode patches ``coords[start:]``; returns all features (N−start, D) unless ``on_batch``
    takes them. ``slide_factory()`` opens the slide (called once per reader thread). The
    encoder runs as :func:`.encoder_inference.inference_encoder` prepares it (``compile``:
    with ``torch.compile``); ``encoder`` itself is not changed."""
    device = device or torch.device("cpu")
    encoder = inference_encoder(encoder, device, compile=compile)
    collected = []
    sink = on_batch or (lambda first, rows: collected.append(rows))
    reader = PatchReader(slide_factory, plan, strips=strips)
    total = len(coords)
    report(progress, start / total if total else 1.0, f"{label}{start}/{total} patches")
    encode_batches(encoder, iter_patch_batches(reader, coords, batch_size, start, workers),
                   device, sink, progress, total, label)
    if on_batch is None:
        return np.concatenate(collected) if collected else np.zeros((0, encoder.dim), np.float32)
    return None
