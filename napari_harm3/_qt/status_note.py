"""Confirmations of the user's own action in the status bar, not in a pop-up.

A napari notification pop-up (``show_info``) costs the window a 120–170 ms freeze when it comes:
its widget is built, its SVG icon painted, and the GL canvases under it are drawn again
(``benchmarks/bench_viewer_latency.py``; measured with the stall sampler, 2 cores, software
OpenGL). "case … opened" and "report written: …" came as such pop-ups at the end of every case
open and every export, while the panel's own status line already said the same.

Decision (issue 15): a confirmation of what the user just did — a case opened, a report written —
goes to the tab's status line (the caller's), napari's status bar and the log; it makes no
pop-up. Anything the user must notice — an error, a refused input, a run cancelled or a result
discarded because another case is open — stays a napari notification.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("napari_harm3")


def confirm(viewer, message: str) -> None:
    """``message`` in napari's status bar (when there is a viewer) and the log; no pop-up."""
    LOG.info(message)
    if viewer is not None:
        viewer.status = message
