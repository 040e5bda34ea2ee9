"""Qt side of napari-harm3: the case panel, the linked MRI grid, the slide minimap.

This package is the only place that imports ``qtpy`` / ``napari.qt``. Importing it imports
nothing; each module pulls in Qt when it is imported itself.

- :mod:`.linking` — :class:`ViewerLink`, a Qt-free controller that keeps several
  ``napari.components.ViewerModel`` s on the same world position (slice, pan, zoom).
- :mod:`.mri_grid` — :class:`MriGrid`, four linked ``QtViewer`` panels (T1/T2 pre/post);
  their reading aids in :mod:`.reading_panel` (:mod:`.reading_mouse`: wheel = slice,
  Ctrl+wheel = zoom, right-drag = window/level; :mod:`.cursor_readout`; :mod:`.panel_controls`),
  the window's "MRI (linked) | Slide" main area in :mod:`.reading_layout`.
- :mod:`.planes` — the grid's axial / coronal / sagittal switch (keys A / C / S) and reslicing;
  :mod:`.crosshair` (Shift-click) and :mod:`.orientation_labels` (edge letters) beside it.
- :mod:`.slide_view` — :class:`SlideView` (the slide in a napari viewer, µm scale bar, mpp)
  and its :class:`SlideMinimap`.
- :mod:`.case_panel` — :class:`CasePanel`, the dock widget of the manifest.
- :mod:`.app` — open napari on a case, wait for it, write screenshots (``harm3 demo/view``).
- :mod:`.images` — screenshots (RGBA arrays) to PNG, atomically.
- :mod:`.in_turns` — GUI-thread work in pieces, one per event-loop turn (a case goes into the
  viewers layer by layer, the window answering in between; a turn's canvas repaints in the turn
  after it); :mod:`.vispy_caches` — exact memos of vispy's per-visual glyph, shader and kernel
  work (the first paint of each canvas); :mod:`.warm_up` — one-time work of the first case open
  done at start; :mod:`.polygon_tool` — a labels layer's polygon tool made when chosen;
  :mod:`.visibility` — a layer's visibility set only when it changes (napari's setter makes
  every canvas update its scene even for the same value); :mod:`.lazy_layer_controls` —
  napari's layer controls made when a layer is chosen, not for every layer added.
"""

import sys as _sys

# torch imports triton (through torch._dynamo, e.g. when torchvision loads); triton's native
# library crashes the process (SIGSEGV) when it loads after napari has created its OpenGL
# context (Mesa/LLVM clash, reproduced under Xvfb). We never use torch.compile, so in the GUI
# we make `import triton` fail cleanly (torch handles that), unless triton is already loaded.
if "triton" not in _sys.modules:
    _sys.modules["triton"] = None

