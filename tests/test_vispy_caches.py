"""The vispy memos (``_qt/vispy_caches.py``) give exactly what vispy's own functions give, and
are used: a second glyph / program / shader of the same input is a hit, not a new computation."""

from __future__ import annotations

import numpy as np
import pytest
from vispy.gloo import glir
from vispy.gloo.program import Program
from vispy.visuals.text.text import SDFRendererCPU

from napari_harm3._qt import vispy_caches

VERT = """
// a comment with a uniform inside: uniform float not_this;
uniform mat4 u_transform;
uniform vec2 u_offsets[3];
attribute vec2 a_position;
in vec3 a_normal;
varying vec4 v_color;
const float k_scale = 2.0;
void main() { gl_Position = u_transform * vec4(a_position * k_scale, 0.0, 1.0); }
"""
FRAG = """
precision highp float;
varying vec4 v_color;
uniform sampler2D u_texture;
void main() { gl_FragColor = v_color * texture2D(u_texture, vec2(0.5)); }
"""


@pytest.fixture(scope="module", autouse=True)
def caches():
    vispy_caches.install()
    assert vispy_caches.installed()


def _glyph(seed: int) -> np.ndarray:
    """A padded glyph bitmap as the fonts pass it: a filled blob of 8-bit ink on a blank border."""
    rng = np.random.default_rng(seed)
    data = np.zeros((160, 128), np.uint8)
    yy, xx = np.mgrid[:96, :64]
    blob = ((yy - 48) ** 2 / 40**2 + (xx - 32) ** 2 / (20 + seed) ** 2) < 1
    data[32:128, 32:96] = np.where(blob, 255, rng.integers(0, 30, blob.shape)).astype(np.uint8)
    return data


def test_glyph_fields_are_vispys_and_computed_once():
    renderer = SDFRendererCPU()
    original = SDFRendererCPU.render_to_texture.__wrapped__
    size = (32, 40)
    for seed in (1, 2):
        data = _glyph(seed)
        reference = np.zeros((64, 64, 3), np.uint8)
        original(renderer, data, reference, (5, 7), size)
        misses = vispy_caches.GLYPHS.misses
        first, second = np.zeros_like(reference), np.zeros_like(reference)
        renderer.render_to_texture(data, first, (5, 7), size)
        renderer.render_to_texture(data, second, (20, 3), size)  # another font's atlas, elsewhere
        np.testing.assert_array_equal(first, reference)
        np.testing.assert_array_equal(second[3:43, 20:52], reference[7:47, 5:37])
        assert vispy_caches.GLYPHS.misses == misses + 1  # the second placement was a hit
        assert reference.any()
    different = np.zeros((64, 64, 3), np.uint8)
    renderer.render_to_texture(_glyph(3), different, (5, 7), size)
    assert not np.array_equal(different, first)  # another glyph is not served a cached one


def test_shader_variables_are_vispys_and_parsed_once():
    hits = vispy_caches.SHADER_VARIABLES.hits
    first = Program(VERT, FRAG)
    second = Program(VERT, FRAG)
    other = Program(VERT.replace("u_transform", "u_other"), FRAG)
    assert vispy_caches.SHADER_VARIABLES.hits >= hits + 1

    reference = Program.__new__(Program)
    reference._shaders = first._shaders
    Program._parse_variables_from_code.__wrapped__(reference, update_variables=False)
    assert first._code_variables == reference._code_variables == second._code_variables
    assert first._code_variables is not second._code_variables  # each program its own dict
    names = set(first._code_variables)
    assert {"u_transform", "u_offsets", "u_offsets[2]", "a_position", "a_normal", "v_color",
            "k_scale", "u_texture"} <= names and "not_this" not in names
    assert "u_other" in other._code_variables and "u_transform" not in other._code_variables
    # uniforms set before the parse reach the program as with vispy's own
    first["u_offsets[1]"] = (1.0, 2.0)
    assert first._user_variables["u_offsets[1]"] is not None


def test_desktop_shader_conversion_is_vispys():
    convert = glir.convert_shader
    for code in (VERT, FRAG, "#version 330\n#extension GL_X : enable\nvoid main() {}\n"):
        assert convert("desktop", code) == convert.__wrapped__("desktop", code)
    misses = vispy_caches.DESKTOP_SHADERS.misses
    convert("desktop", FRAG)
    assert vispy_caches.DESKTOP_SHADERS.misses == misses


def test_memo_is_bounded_least_recently_used_first():
    memo = vispy_caches._Memo(2)
    memo.lookup("a", lambda: 1)
    memo.lookup("b", lambda: 2)
    memo.lookup("a", lambda: 0)  # a used again: b is now the oldest
    memo.lookup("c", lambda: 3)
    assert list(memo) == ["a", "c"] and memo.hits == 1 and memo.misses == 3


def _triangle_mesh(shift: float):
    vertices = np.array([[0, 0], [1, 0], [0, 1]], np.float32) + shift
    return vertices, np.array([[0, 1, 2]], np.uint32)


def _built_code(mesh) -> tuple[str, ...]:
    mesh._update_data()
    mesh._program.build_if_needed()  # the visual's own program (shared_program fans out to it)
    return tuple(shader.code for shader in mesh._program._shaders)


def test_a_mesh_given_new_vertices_keeps_its_program_and_its_code_is_vispys():
    """A scale bar's or colour bar's box gets new vertices whenever the canvas overlays are placed
    (every visibility click): the same colour function stays, so nothing is compiled again."""
    from vispy.visuals.mesh import MeshVisual

    mesh = MeshVisual(*_triangle_mesh(0.0), color="red")
    _built_code(mesh)
    mesh.set_data(*_triangle_mesh(2.0), color="red")
    mesh._update_data()
    assert not mesh._program._need_build  # no relink for the same pass-through code
    ours = _built_code(mesh)

    original = MeshVisual._build_color_transform
    MeshVisual._build_color_transform = original.__wrapped__  # vispy's own: a new function each time
    try:
        reference = MeshVisual(*_triangle_mesh(0.0), color="red")
        _built_code(reference)
        reference.set_data(*_triangle_mesh(2.0), color="red")
        reference._update_data()
        assert reference._program._need_build  # what the memo saves
        assert _built_code(reference) == ours
    finally:
        MeshVisual._build_color_transform = original


def test_a_value_mesh_keeps_vispys_colormap_chain():
    """A mesh coloured by values through a colormap builds its clim chain anew, as vispy does."""
    from vispy.visuals.mesh import MeshVisual

    vertices, faces = _triangle_mesh(0.0)
    mesh = MeshVisual(vertices, faces, vertex_values=np.array([0.0, 0.5, 1.0], np.float32))
    first = mesh._build_color_transform(np.zeros((3, 1), np.float32))
    second = mesh._build_color_transform(np.zeros((3, 1), np.float32))
    assert first is not second and type(first).__name__ == "FunctionChain"


@pytest.mark.parametrize("packed", [True, False])
def test_the_interpolation_kernels_are_vispys_read_once(packed):
    import vispy.visuals.image
    import vispy.visuals.volume

    cached = vispy.visuals.image.load_spatial_filters
    assert vispy.visuals.volume.load_spatial_filters is cached
    kernel, names = cached(packed=packed)
    own_kernel, own_names = cached.__wrapped__(packed=packed)
    assert kernel.dtype == own_kernel.dtype and np.array_equal(kernel, own_kernel) and names == tuple(own_names)
    assert not kernel.flags.writeable  # shared: no visual may change it
    hits = vispy_caches.SPATIAL_FILTERS.hits
    again, _ = cached(packed=packed)
    assert again is kernel and vispy_caches.SPATIAL_FILTERS.hits == hits + 1


def test_an_image_visual_takes_the_read_once_kernels():
    from vispy.visuals.image import ImageVisual

    hits = vispy_caches.SPATIAL_FILTERS.hits
    visual = ImageVisual(np.zeros((4, 4), np.float32))
    assert vispy_caches.SPATIAL_FILTERS.hits > hits
    assert visual._kerneltex.shape[:2] == vispy_caches.SPATIAL_FILTERS[True][0].shape[:2]


@pytest.mark.gui
def test_a_programs_active_variables_are_what_opengl_answers_asked_once_per_source(make_napari_viewer, qtbot):
    """Two image layers link programs of the same source: OpenGL is asked for the second's
    active variables no more, and every linked program's memo answer is OpenGL's own."""
    vispy_caches.install()
    viewer = make_napari_viewer(show=True)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    rng = np.random.default_rng(3)
    hits = vispy_caches.ACTIVE_VARIABLES.hits
    compared = []

    def compare(event):  # in the draw: the canvas's context is current
        for program in list(canvas.context.shared.parser._objects.values()):
            if isinstance(program, glir.GlirProgram) and program._linked and getattr(program, "harm3_sources", None):
                asked = glir.GlirProgram._get_active_attributes_and_uniforms.__wrapped__(program)
                compared.append((program._get_active_attributes_and_uniforms(), asked))

    viewer.add_image(rng.random((16, 16)).astype(np.float32), name="first")
    qtbot.wait(200)
    viewer.add_image(rng.random((16, 16)).astype(np.float32), name="second")
    viewer.add_points(np.array([[2.0, 2.0], [9.0, 5.0]]), name="points")  # programs of other sources
    qtbot.wait(200)
    canvas.events.draw.connect(compare, position="last")
    canvas.update()
    qtbot.waitUntil(lambda: bool(compared), timeout=10_000)
    canvas.events.draw.disconnect(compare)
    assert vispy_caches.ACTIVE_VARIABLES.hits > hits  # the second layer's programs: from the memo
    assert all(memo == asked and memo is not asked for memo, asked in compared)
    assert len({frozenset(asked) for _, asked in compared}) > 1  # programs of other sources: their own answers
