"""The Models tab's survival curve: drawn by matplotlib in a thread of its own (issue 15: on the
GUI thread each result froze the window 150–240 ms), shown only for the newest request."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_harm3._qt import results_view
from napari_harm3._qt.results_view import PLOT_DPI, PLOT_HEIGHT, SurvivalPicture, draw_survival
from napari_harm3.core.predict.survival import SurvivalPrediction

pytestmark = pytest.mark.gui


def prediction(case_id: str, curve) -> SurvivalPrediction:
    curve = np.asarray(curve, dtype=float)
    months = np.array([0.0, 9.5, 21.0, 40.0])
    return SurvivalPrediction(
        case_id=case_id, model="demo", risk=-2.1, risk_spread=0.1, fold_risks=(-2.0, -2.2), survival=curve[1:],
        cuts_months=(9.5, 21.0), months=months, survival_curve=curve, survival_low=curve - 0.05,
        survival_high=np.minimum(curve + 0.05, 1.0), t_max_months=60.0, risk_threshold=-2.0, risk_group="low",
        missing_inputs=(), attention={}, n_patches={5: 1, 10: 1, 20: 1})


def blue_pixels(rgba: np.ndarray) -> np.ndarray:
    rgb = rgba[..., :3].astype(int)
    return (rgb[..., 2] - rgb[..., 0]) > 80  # tab:blue and its band, not the black axes or white


def shown_rgba(view: SurvivalPicture) -> np.ndarray:
    from qtpy.QtGui import QImage

    image = view.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    buffer = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), dtype=np.uint8)
    return buffer.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()]


def test_the_curve_is_drawn_where_its_values_are():
    high = draw_survival(prediction("A", [1.0, 0.95, 0.9, 0.85]), 400, 200, 100)
    low = draw_survival(prediction("B", [1.0, 0.4, 0.2, 0.1]), 400, 200, 100)
    assert high.shape == (200, 400, 4) and high.dtype == np.uint8
    rows_high, rows_low = np.nonzero(blue_pixels(high))[0], np.nonzero(blue_pixels(low))[0]
    assert rows_high.size > 200 and rows_low.size > 200
    assert np.median(rows_low) > np.median(rows_high) + 20  # a lower S(t) is drawn lower


def test_the_picture_is_drawn_off_the_gui_thread_and_only_the_newest_is_shown(qtbot, monkeypatch):
    threads = []

    def recorded(*args):
        threads.append(threading.current_thread())
        return draw_survival(*args)

    monkeypatch.setattr(results_view, "draw_survival", recorded)
    view = SurvivalPicture()
    qtbot.addWidget(view)
    view.resize(420, PLOT_HEIGHT)
    a, b = prediction("A", [1.0, 0.95, 0.9, 0.85]), prediction("B", [1.0, 0.4, 0.2, 0.1])
    view.show_survival(a)
    view.show_survival(b)  # before A's picture arrived
    qtbot.waitUntil(lambda: view.up_to_date, timeout=20_000)
    assert threads and all(t is not threading.main_thread() for t in threads)
    ratio = view.devicePixelRatioF()
    size = (round(max(view.width(), 240) * ratio), round(PLOT_HEIGHT * ratio), PLOT_DPI * ratio)
    got = shown_rgba(view).astype(int)
    # B's curve, never A's (text anti-aliasing may differ by a few levels between threads' fonts)
    assert np.abs(got - draw_survival(b, *size)).max() <= 16
    assert np.abs(got - draw_survival(a, *size)).max() > 100

    # a result withdrawn (another case opened) before its picture came: nothing is shown
    view.show_survival(a)
    view.show_survival(None)
    for thread in threads:
        thread.join(timeout=20)
    qtbot.wait(50)  # the queued picture, if any, is delivered (and dropped)
    assert view.pixmap().isNull() and not view.isVisible() and view.shown == 0
