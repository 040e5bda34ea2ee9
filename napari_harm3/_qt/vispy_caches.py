"""Exact memos for pure steps vispy repeats for every visual of every canvas (issue 15).

Opening a case puts an image, a labels layer, a title, a scale bar and orientation letters on
four canvases (five with the slide). With software OpenGL most of the first paint's time was not
OpenGL but Python, doing again what it had done for the canvas before
(``benchmarks/bench_viewer_latency.py --profile``, 2 cores):

- each text visual has its own font manager, so every glyph ("T", "1", "-", "R", "L", …) of every
  title, scale bar and letter was rasterised and turned into a signed distance field on the CPU
  again (``SDFRendererCPU.render_to_texture``: 134 glyphs, 0.85 s per case open);
- every shader program's source was scanned with regular expressions for its variables
  (``gloo.Program._parse_variables_from_code``: 100 programs, 0.84 s), and converted for desktop
  GL line by line (``gloo.glir.convert_shader``: 0.13 s), though the four panels' programs have
  the same source;
- every program, once linked, asked OpenGL for each of its active attributes and uniforms, one
  PyOpenGL call each (``GlirProgram._get_active_attributes_and_uniforms``: ~220 calls, ~15 ms for
  the eight programs of a panel's edge letters): the answer depends on the shaders' sources only
  (the memo is keyed by them, as compiled).

Each is a pure function of its input, so a memo keyed by that input gives the very same result
(``tests/test_vispy_caches.py`` compares them with the uncached functions). The glyph memo keeps
the distance field only; each font still writes it into its own atlas texture (a texture belongs
to one GL context). The memos are bounded (least recently used entries go first).

A fourth repeat made a visibility click cost six shader links per MRI panel: a mesh (the scale
bar's box, a colour bar's) that gets new vertices builds a new colour-transform ``Function``
(``MeshVisual._build_color_transform``), and a new function object in a program means a new
program to compile and link, though the code is the same one-line pass-through. The mesh now keeps
its pass-through function while the code stays the same (the clim + colormap chain of value
meshes is left to vispy).

Every image, volume and font visual also reads vispy's interpolation kernels from disk again
(``vispy.io.load_spatial_filters``: ``np.load`` and a repacking, 1–2 ms a call while a run's
workers hold the GIL; three calls per new napari image layer). The kernels are a file shipped with
vispy, so they are read once and the same read-only arrays handed out (the visuals copy them into
their textures).

:func:`install` is idempotent; the MRI grid and the slide view call it before they make canvases.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import vispy.visuals.image
import vispy.visuals.text.text
import vispy.visuals.volume
from napari._vispy.utils import qt_font
from vispy.gloo import glir
from vispy.gloo.program import Program
from vispy.visuals.mesh import MeshVisual
from vispy.visuals.shaders import Function, FunctionChain
from vispy.visuals.text.text import SDFRendererCPU

#: most glyph fields / shader sources kept (a glyph's field is ~2 kB, a parse a few hundred entries)
MAX_GLYPHS = 4096
MAX_SHADERS = 1024

_INSTALLED = {}


class _Memo(OrderedDict):
    """A bounded least-recently-used dict; ``hits`` and ``misses`` for the tests."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.hits = 0
        self.misses = 0

    def lookup(self, key, compute):
        if key in self:
            self.hits += 1
            self.move_to_end(key)
            return self[key]
        self.misses += 1
        value = compute()
        self[key] = value
        if len(self) > self.limit:
            self.popitem(last=False)
        return value


GLYPHS = _Memo(MAX_GLYPHS)
SHADER_VARIABLES = _Memo(MAX_SHADERS)
ACTIVE_VARIABLES = _Memo(MAX_SHADERS)
DESKTOP_SHADERS = _Memo(MAX_SHADERS)
#: each mesh's last pass-through colour function (gone with the mesh)
PASS_THROUGH = weakref.WeakKeyDictionary()


def _glyph_key(data: np.ndarray, size) -> tuple:
    digest = hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).digest()
    return data.shape, str(data.dtype), tuple(int(s) for s in size), digest


def _cached_render_to_texture(original):
    def render_to_texture(self, data, texture, offset, size):
        def field():
            scratch = np.zeros((int(size[1]), int(size[0]), 3), np.uint8)  # the atlas's layout
            original(self, data, scratch, (0, 0), size)
            scratch.setflags(write=False)
            return scratch

        bitmap = GLYPHS.lookup(_glyph_key(data, size), field)
        x, y = int(offset[0]), int(offset[1])
        texture[y:y + bitmap.shape[0], x:x + bitmap.shape[1], :] = bitmap

    render_to_texture.__wrapped__ = original
    return render_to_texture


def _cached_parse(original):
    def parse(shaders) -> dict:
        scratch = SimpleNamespace(_shaders=shaders, _code_variables=None)
        original(scratch, update_variables=False)  # vispy's own parse, on the code alone
        return scratch._code_variables

    def _parse_variables_from_code(self, update_variables=True):
        code = "\n\n".join(shader.code for shader in self._shaders)  # what vispy parses
        self._code_variables = dict(SHADER_VARIABLES.lookup(code, lambda: parse(self._shaders)))
        if update_variables:
            self._process_pending_variables()

    _parse_variables_from_code.__wrapped__ = original
    return _parse_variables_from_code


def _cached_convert(original):
    def convert_shader(backend_type, shader):
        return DESKTOP_SHADERS.lookup((backend_type, shader), lambda: original(backend_type, shader))

    convert_shader.__wrapped__ = original
    return convert_shader


def _kept_pass_through(original):
    """``MeshVisual._build_color_transform`` giving back the mesh's last plain function when vispy
    builds one of the very same code (a function object already in the program: no relink)."""

    def _build_color_transform(self, colors):
        built = original(self, colors)
        if not isinstance(built, Function) or isinstance(built, FunctionChain) or built.template_vars:
            return built  # the value → colormap chain has variables (clim): vispy's own
        kept = PASS_THROUGH.get(self)
        if kept is not None and kept.code == built.code:
            return kept
        PASS_THROUGH[self] = built  # vispy's visuals are frozen: kept beside the mesh, not on it
        return built

    _build_color_transform.__wrapped__ = original
    return _build_color_transform


def _noting_source(original):
    def set_data(self, offset, code):
        self.harm3_source = None  # unknown until compiled
        result = original(self, offset, code)
        self.harm3_source = code  # what the shader was compiled from
        return result

    set_data.__wrapped__ = original
    return set_data


def _noting_sources(original):
    def link_program(self):
        sources = tuple(getattr(shader, "harm3_source", None) for shader in self._attached_shaders)
        # what the program is linked from, for the memo below (None: not known)
        self.harm3_sources = sources if sources and None not in sources else None
        return original(self)

    link_program.__wrapped__ = original
    return link_program


def _cached_active_variables(original):
    def _get_active_attributes_and_uniforms(self):
        sources = getattr(self, "harm3_sources", None)
        if sources is None:  # linked some other way: ask OpenGL
            return original(self)
        # a new set each time: the program strikes each variable off as it is set
        return set(ACTIVE_VARIABLES.lookup(sources, lambda: frozenset(original(self))))

    _get_active_attributes_and_uniforms.__wrapped__ = original
    return _get_active_attributes_and_uniforms


#: the modules that call ``load_spatial_filters`` by the name they imported
KERNEL_READERS = (vispy.visuals.image, vispy.visuals.volume, vispy.visuals.text.text, qt_font)
SPATIAL_FILTERS = _Memo(4)


def _cached_spatial_filters(original):
    def read(packed: bool):
        kernel, names = original(packed=packed)
        kernel.setflags(write=False)  # vispy's own array (np.load, or the packing's new one), shared
        return kernel, tuple(names)

    def load_spatial_filters(packed=True):
        return SPATIAL_FILTERS.lookup(bool(packed), lambda: read(bool(packed)))

    load_spatial_filters.__wrapped__ = original
    return load_spatial_filters


def install() -> None:
    """Put the memos in place of vispy's functions (once per process)."""
    if _INSTALLED:
        return
    _INSTALLED["render_to_texture"] = SDFRendererCPU.render_to_texture
    _INSTALLED["parse"] = Program._parse_variables_from_code
    _INSTALLED["convert_shader"] = glir.convert_shader
    _INSTALLED["mesh_color_transform"] = MeshVisual._build_color_transform
    SDFRendererCPU.render_to_texture = _cached_render_to_texture(_INSTALLED["render_to_texture"])
    Program._parse_variables_from_code = _cached_parse(_INSTALLED["parse"])
    glir.convert_shader = _cached_convert(_INSTALLED["convert_shader"])
    MeshVisual._build_color_transform = _kept_pass_through(_INSTALLED["mesh_color_transform"])
    _INSTALLED["shader_data"] = glir.GlirShader.set_data
    _INSTALLED["link_program"] = glir.GlirProgram.link_program
    _INSTALLED["active_variables"] = glir.GlirProgram._get_active_attributes_and_uniforms
    glir.GlirShader.set_data = _noting_source(_INSTALLED["shader_data"])
    glir.GlirProgram.link_program = _noting_sources(_INSTALLED["link_program"])
    glir.GlirProgram._get_active_attributes_and_uniforms = _cached_active_variables(_INSTALLED["active_variables"])
    _INSTALLED["load_spatial_filters"] = vispy.visuals.image.load_spatial_filters
    cached = _cached_spatial_filters(_INSTALLED["load_spatial_filters"])
    for module in KERNEL_READERS:
        module.load_spatial_filters = cached


def installed() -> bool:
    return bool(_INSTALLED)
