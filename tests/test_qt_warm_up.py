"""The window's start-up warm-up (issue 15): the first case open finds its glyphs computed."""

from __future__ import annotations

import pytest
from napari._vispy.utils.qt_font import QtTextureFont
from qtpy.QtGui import QGuiApplication
from vispy.visuals.text.text import SDFRendererCPU

from napari_harm3._qt import vispy_caches
from napari_harm3._qt.warm_up import WARM_GLYPHS, warm_glyphs, warm_opengl

pytestmark = pytest.mark.gui


def test_the_panels_text_finds_its_glyphs_in_the_memo_after_warming(qapp):
    face = QGuiApplication.font().family()
    vispy_caches.install()
    vispy_caches.GLYPHS.clear()  # as a new process starts (other tests filled it)
    warm_glyphs()
    shown = "ÅÉÑŐjgpqy" + "T1-pre — not loaded" + "T2-post" + "RLAPSI" + "20 mm" + "500 µm" + "resliced onto"
    assert set(shown) <= set(WARM_GLYPHS)
    font = QtTextureFont({"face": face, "bold": False, "italic": False}, SDFRendererCPU())  # a canvas's own
    misses = vispy_caches.GLYPHS.misses
    for char in dict.fromkeys(shown):
        glyph = font[char]
        assert glyph["size"][0] > 0 and glyph["size"][1] > 0
    assert vispy_caches.GLYPHS.misses == misses  # every field came from the memo


def test_the_opengl_warm_up_compiles_links_and_draws_its_program(qapp):
    """The driver's compiler is set up at start by a real draw: the pixel read back is the
    texture's colour (a program that failed to compile, link or draw would not give it)."""
    assert warm_opengl((10, 200, 30, 255)) == (10, 200, 30, 255)
    assert warm_opengl((250, 5, 90, 255)) == (250, 5, 90, 255)  # drawn again, not a leftover
