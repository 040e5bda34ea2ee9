"""Where the MRI grid sits in the napari window: the main area, the slide one tab away.

The napari window's main area (its central widget: the canvas of the napari viewer, which
shows the slide) becomes the tabs ``MRI (linked) | 3 planes | Slide``. With a case open the MRI grid
has the tab, so the four panels share the window's width instead of a dock column; the
slide is one click away (its tab), and back. "3 planes" shows one chosen volume of the grid in
axial, coronal and sagittal side by side (:mod:`.three_plane_view`; built when first shown).

napari's own layer list and layer controls belong to the slide viewer: they are hidden while
the MRI tab is shown (each MRI panel has its own controls) and come back with the slide tab,
as the user left them. Only public Qt API: the case panel's own window is the napari
``QMainWindow``; napari names those two docks ``layer list`` and ``layer controls``.

Where the case panel is not (yet) in a main window, the grid is docked instead, as before.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QTabWidget, QWidget

from .three_plane_view import TAB_TITLE as THREE_PLANES_TAB
from .three_plane_view import ThreePlaneView

MRI_TAB = "MRI (linked)"
SLIDE_TAB = "Slide"
#: napari's docks of its own viewer (the slide's), hidden behind the MRI tab
SLIDE_DOCKS = ("layer list", "layer controls")
#: width of the right-hand dock column (case panel): this fraction of the window, within bounds
SIDE_FRACTION, SIDE_MIN_PX, SIDE_MAX_PX = 0.24, 360, 460


class CaseViews(QTabWidget):
    """The main area: the MRI grid, the three planes of one volume and napari's slide canvas as tabs."""

    def __init__(self, grid: QWidget, slide_area: QWidget, main_window: QMainWindow):
        super().__init__(main_window)
        self.setObjectName("harm3_case_views")
        self.setDocumentMode(True)
        self.grid = grid
        self.slide_area = slide_area
        self._main_window = main_window
        self._slide_docks_shown: dict[str, bool] = {}
        self._narrowed = False
        self.three_planes = ThreePlaneView(grid)  # its canvases are made when the tab is first shown
        self.addTab(grid, MRI_TAB)
        self.addTab(self.three_planes, THREE_PLANES_TAB)
        self.addTab(slide_area, SLIDE_TAB)
        self.currentChanged.connect(self._on_tab)

    @classmethod
    def install(cls, grid: QWidget, anchor: QWidget) -> CaseViews | None:
        """Put ``grid`` next to the central widget of ``anchor``'s main window; None when
        ``anchor`` is not in a ``QMainWindow``. Done once per window."""
        main_window = anchor.window()
        if not isinstance(main_window, QMainWindow):
            return None
        current = main_window.centralWidget()
        if isinstance(current, cls):
            return current
        slide_area = main_window.takeCentralWidget()
        views = cls(grid, slide_area, main_window)
        main_window.setCentralWidget(views)
        views.show()  # now, not at the next event loop turn: the canvases can be drawn at once
        slide_area.show()
        return views

    def narrow_side_docks(self) -> None:
        """Give the docks on the right (case panel, minimap) a side column's width, the main
        area the rest (a dock that was widened while the grid sat in a dock column keeps it)."""
        window = self._main_window
        self._relayout()
        right = [d for d in window.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                 and window.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        if right:
            width = max(SIDE_MIN_PX, min(SIDE_MAX_PX, int(SIDE_FRACTION * window.width())))
            window.resizeDocks(right, [width] * len(right), Qt.Orientation.Horizontal)
        self._relayout()

    # -- tabs ---------------------------------------------------------------------------
    def show_mri(self) -> None:
        self.setCurrentWidget(self.grid)
        self._on_tab(self.currentIndex())
        if not self._narrowed:  # once, after the window has laid out the hidden docks' space
            self._narrowed = True
            QTimer.singleShot(0, self.narrow_side_docks)

    def show_three_planes(self, key: str | None = None) -> None:
        """The "3 planes" tab, showing grid panel ``key``'s volume (the current choice when None)."""
        self.setCurrentWidget(self.three_planes)
        self._on_tab(self.currentIndex())
        self.three_planes.ensure_built()
        if key is not None:
            self.three_planes.choose(key)

    def close_viewers(self) -> None:
        """Close the three-plane canvases (the grid's are the grid's)."""
        self.three_planes.close_viewers()

    def show_slide(self) -> None:
        self.setCurrentWidget(self.slide_area)
        self._on_tab(self.currentIndex())

    def _slide_docks(self) -> list[QDockWidget]:
        return [d for d in self._main_window.findChildren(QDockWidget) if d.objectName() in SLIDE_DOCKS]

    def _on_tab(self, index: int) -> None:
        mri = self.widget(index) in (self.grid, self.three_planes)
        for dock in self._slide_docks():
            if mri:
                if dock.objectName() not in self._slide_docks_shown:
                    self._slide_docks_shown[dock.objectName()] = dock.isVisible()
                dock.hide()
            elif self._slide_docks_shown.pop(dock.objectName(), False):
                dock.show()
        self._relayout()

    def _relayout(self) -> None:
        """Lay the window out now: without it the hidden docks' column can stay empty."""
        layout = self._main_window.layout()
        layout.invalidate()
        layout.activate()
