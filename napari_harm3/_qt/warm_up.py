"""One-time work of the first case open, done while the window starts instead (issue 15).

Opening the first case of a session froze the window in two places that have nothing to do with
the case (``benchmarks/bench_viewer_latency.py --stalls``, 2 cores):

- pint's unit registry, which napari builds the first time a layer has units ("mm", "µm"): it
  parses pint's whole definitions file, ~0.4 s; with the rest of napari's first-layer set-up
  (lazy imports, first evented models), the first Image and Labels layers cost ~0.45 s more
  than the next ones;
- vispy's dash atlas, made the first time a line visual is (the crosshair): thirteen dash
  patterns computed with numpy, ~0.1 s (vispy keeps them in an ``lru_cache`` afterwards);
- the canvases' text glyphs (titles, edge letters, scale bars, vispy's ascender/descender probe
  'ÅÉÑŐjgpqy'): each new glyph's signed distance field is computed on the CPU, ~6 ms, 36 of them
  at the first open, in the paints of the turns that showed the text (two freezes of 120–160 ms
  left in the open). :data:`WARM_GLYPHS` are put into :mod:`.vispy_caches`' glyph memo through
  napari's own font class, with the face the canvases use (the application font's family), so
  the canvases find them there (~0.3 s at start);
- the OpenGL driver's shader compiler: the process's first compile, link and draw set it up
  (Mesa's software driver starts LLVM: ~90 ms more than the next program's, measured on 2 cores),
  and the first case open's first paint paid it (with the window composed: ~125 ms). One small
  textured program is compiled, linked and drawn in an offscreen context (:func:`warm_opengl`).

:func:`warm_up` makes them (a small Image and Labels layer in mm, kept by no viewer) before the window is handed over, so they are paid once at start-up
(and, made before :func:`.startup_gc.freeze_startup_objects`, skipped by later collections).
"""

from __future__ import annotations

import string

import numpy as np
from napari._vispy.utils.qt_font import QtTextureFont
from napari.layers import Image, Labels
from qtpy.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext
from qtpy.QtOpenGL import QOpenGLFramebufferObject
from vispy.gloo import gl
from vispy.visuals.line.dash_atlas import DashAtlas
from vispy.visuals.text.text import SDFRendererCPU

from .vispy_caches import install as install_vispy_caches

#: what the canvases write: vispy's metrics probe, titles and notes ("T1-pre — not loaded",
#: "resliced onto T1-pre"), edge letters, scale bars ("20 mm", "500 µm")
WARM_GLYPHS = "ÅÉÑŐjgpqy" + string.digits + string.ascii_lowercase + "RLAPSIT" + " -—.:µ"


def warm_glyphs() -> None:
    """Compute :data:`WARM_GLYPHS`' distance fields into the glyph memo (napari's font class)."""
    install_vispy_caches()
    font = QtTextureFont({"face": QGuiApplication.font().family(), "bold": False, "italic": False}, SDFRendererCPU())
    for char in WARM_GLYPHS:
        font[char]


#: the warm-up program: a texture drawn over the whole (tiny) target
WARM_VERTEX = """
attribute vec2 a_position;
varying vec2 v_texcoord;
void main() {
    v_texcoord = a_position * 0.5 + 0.5;
    gl_Position = vec4(a_position, 0.0, 1.0);
}
"""
WARM_FRAGMENT = """
uniform sampler2D u_texture;
varying vec2 v_texcoord;
void main() {
    gl_FragColor = texture2D(u_texture, v_texcoord);
}
"""
WARM_SIZE = 8


def warm_opengl(colour=(10, 200, 30, 255)):
    """Compile, link and draw :data:`WARM_VERTEX` / :data:`WARM_FRAGMENT` (a texture of
    ``colour``) in an offscreen context, through vispy's own OpenGL bindings; returns the pixel
    drawn at the centre (RGBA), or None where no context could be made or the driver refused
    the program (the first paint then sets the compiler up, as before: a warm-up never stops the
    window from starting)."""
    context = QOpenGLContext()
    if not context.create():
        return None
    surface = QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    if not context.makeCurrent(surface):
        return None
    try:
        target = QOpenGLFramebufferObject(WARM_SIZE, WARM_SIZE)
        target.bind()
        try:
            return _draw_once(np.asarray(colour, np.uint8))
        except Exception:  # noqa: BLE001 — a driver without this GLSL (or a GL error): no warm-up
            return None
        finally:
            target.release()
    finally:
        context.doneCurrent()


def _draw_once(colour: np.ndarray):
    program = gl.glCreateProgram()
    shaders = []
    for source, kind in ((WARM_VERTEX, gl.GL_VERTEX_SHADER), (WARM_FRAGMENT, gl.GL_FRAGMENT_SHADER)):
        shader = gl.glCreateShader(kind)
        gl.glShaderSource(shader, source)
        gl.glCompileShader(shader)
        if not gl.glGetShaderParameter(shader, gl.GL_COMPILE_STATUS):
            raise RuntimeError(f"warm-up shader: {gl.glGetShaderInfoLog(shader)}")
        gl.glAttachShader(program, shader)
        shaders.append(shader)
    gl.glLinkProgram(program)
    if not gl.glGetProgramParameter(program, gl.GL_LINK_STATUS):
        raise RuntimeError(f"warm-up program: {gl.glGetProgramInfoLog(program)}")
    buffer, texture = gl.glCreateBuffer(), gl.glCreateTexture()
    try:
        gl.glUseProgram(program)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, buffer)
        corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, corners, gl.GL_STATIC_DRAW)
        position = gl.glGetAttribLocation(program, "a_position")
        gl.glEnableVertexAttribArray(position)
        gl.glVertexAttribPointer(position, 2, gl.GL_FLOAT, False, 0, 0)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D, texture)
        for name in (gl.GL_TEXTURE_MIN_FILTER, gl.GL_TEXTURE_MAG_FILTER):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, name, gl.GL_NEAREST)
        pixels = np.broadcast_to(colour, (2, 2, 4)).copy()
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGBA, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, pixels)
        gl.glUniform1i(gl.glGetUniformLocation(program, "u_texture"), 0)
        gl.glViewport(0, 0, WARM_SIZE, WARM_SIZE)
        gl.glDrawArrays(gl.GL_TRIANGLE_STRIP, 0, 4)
        centre = WARM_SIZE // 2
        drawn = gl.glReadPixels(centre, centre, 1, 1, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE)
        return tuple(np.frombuffer(bytes(drawn), np.uint8)[:4].tolist())
    finally:
        gl.glUseProgram(0)
        gl.glDeleteBuffer(buffer)
        gl.glDeleteTexture(texture)
        for shader in shaders:
            gl.glDeleteShader(shader)
        gl.glDeleteProgram(program)


def warm_up() -> None:
    Image(np.zeros((2, 2, 2), np.float32), units="mm")
    Labels(np.zeros((2, 2, 2), np.int32), units="mm")
    DashAtlas()
    warm_glyphs()
    warm_opengl()
