"""Drawing a tumour mask in an MRI panel (real mouse events in napari's paint mode) and using it:
the session measures it on the volume's voxels and the results say "drawn"."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _left(widget, kind: str, x: float, y: float) -> None:
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    button = Qt.MouseButton.LeftButton if kind != "move" else Qt.MouseButton.NoButton
    buttons = Qt.MouseButton.LeftButton if kind != "release" else Qt.MouseButton.NoButton
    point = QPointF(x, y)
    QApplication.sendEvent(widget, QMouseEvent(types[kind], point, QPointF(widget.mapToGlobal(point)), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def test_a_painted_mask_is_measured_as_drawn(make_napari_viewer, qtbot, tmp_path):
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.draw_mask_box import DRAWN_KEY, install_draw_mask_box
    from napari_harm3.core.synth.cohort import make_case

    case = make_case(tmp_path / "PAINT-1", seed=41, case_id="PAINT-1")
    viewer = make_napari_viewer(show=True)
    panel = CasePanel(viewer)
    box = install_draw_mask_box(panel)
    viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
    try:
        assert not box.draw_button.isEnabled()
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.open_case(case.manifest)
        assert box.panel_choice.count() == 4 and box.draw_button.isEnabled()
        layer = box.start_drawing("t1_post")
        assert layer.mode == "paint" and layer.metadata[DRAWN_KEY] == panel.session.ref
        native = panel.grid.qt_viewer("t1_post").canvas.native
        qtbot.waitUntil(native.isVisible, timeout=5000)
        x0, y0 = native.width() / 2, native.height() / 2
        _left(native, "press", x0, y0)
        for step in range(1, 25):  # vispy drops moves closer than 10 ms apart: wait between them
            qtbot.wait(15)
            _left(native, "move", x0 + step, y0 + step / 2)
        _left(native, "release", x0 + 24, y0 + 12)
        qtbot.waitUntil(lambda: np.count_nonzero(layer.data) > 0, timeout=5000)
        painted = int(np.count_nonzero(layer.data))
        assert len(np.unique(np.nonzero(layer.data)[0])) == 1  # one slice painted, the one shown

        measured = box.use_drawn()
        assert [s.sequence for s in measured] == ["t1_post"]
        size = measured[0]
        volume = panel.session.opened.volumes.volumes["t1_post"]
        voxel_ml = abs(np.linalg.det(np.asarray(volume.affine)[:3, :3])) / 1000.0
        assert size.mask_origin == "drawn" and size.voxels == painted
        assert size.volume_ml == pytest.approx(painted * voxel_ml, rel=1e-6)
        assert "mL" in box.status.text()
        assert panel.session.opened.volumes.masks["t1_post"].metadata["origin"] == "drawn"
    finally:
        panel.close_viewers()
