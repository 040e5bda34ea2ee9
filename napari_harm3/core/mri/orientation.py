"""Viewing planes and the patient-direction letters on a view's edges. Pure numpy.

World points are (z, y, x) in LPS millimetres (``core/io/mri.py``): +z superior, +y posterior,
+x the patient's left. A plane shows two world axes on the screen's rows and columns:

=========  ===========  ===========  ==============================================
plane      rows (down)  columns      what the radiologist expects
=========  ===========  ===========  ==============================================
axial      y  (↓ = P)   x  (→ = L)   anterior at the top, patient's right on the left
coronal    z  (↑ = S)   x  (→ = L)   superior at the top, patient's right on the left
sagittal   z  (↑ = S)   y  (→ = P)   superior at the top, anterior on the left
=========  ===========  ===========  ==============================================

(the radiological convention: the patient faces the viewer). ``orientation2d`` follows napari's
camera (``"down"``/``"up"`` for the rows, ``"right"``/``"left"`` for the columns).

:func:`edge_letters` names each edge from an affine (index → LPS world) and the two index axes
shown, so it answers for a slice of any volume — a NIfTI (read into LPS through its sform or
qform) or a DICOM series alike; the viewer, which shows world axes, passes the identity.
"""

from __future__ import annotations

import numpy as np

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
#: keyboard keys of the planes
PLANE_KEYS: dict[str, str] = {"A": "axial", "C": "coronal", "S": "sagittal"}
#: world axes (z, y, x) shown on the screen's (rows, columns)
DISPLAYED_AXES: dict[str, tuple[int, int]] = {"axial": (1, 2), "coronal": (0, 2), "sagittal": (0, 1)}
#: the direction rows and columns increase on the screen (napari's camera.orientation2d)
SCREEN_ORIENTATION: dict[str, tuple[str, str]] = {
    "axial": ("down", "right"), "coronal": ("up", "right"), "sagittal": ("up", "right")}
#: world axis → (letter of its + direction, letter of its − direction)
AXIS_LETTERS: dict[int, tuple[str, str]] = {0: ("S", "I"), 1: ("P", "A"), 2: ("L", "R")}
#: a direction component this large (relative to the largest) adds its letter: "LA" for oblique
SECOND_LETTER_FRACTION = 0.25


def _plane(plane: str) -> str:
    if plane not in DISPLAYED_AXES:
        raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
    return plane


def slice_axis(plane: str) -> int:
    """The world axis a plane steps through (z for axial, y coronal, x sagittal)."""
    shown = DISPLAYED_AXES[_plane(plane)]
    return next(a for a in range(3) if a not in shown)


def dims_order(plane: str, ndim: int = 3) -> tuple[int, ...]:
    """napari ``dims.order`` showing ``plane``: leading (non-spatial) axes, the slice axis, rows, columns."""
    lead = ndim - 3
    if lead < 0:
        raise ValueError(f"a plane needs 3 spatial dimensions, the viewer has {ndim}")
    rows, cols = DISPLAYED_AXES[_plane(plane)]
    return tuple(range(lead)) + tuple(lead + a for a in (slice_axis(plane), rows, cols))


def plane_of_order(order) -> str | None:
    """The plane a napari ``dims.order`` shows (its last three axes), or None."""
    order = tuple(order)
    if len(order) < 3:
        return None
    lead = len(order) - 3
    for plane in PLANES:
        if order[-3:] == dims_order(plane, len(order))[-3:] and sorted(order[:lead]) == list(range(lead)):
            return plane
    return None


def direction_letters(vector) -> str:
    """Patient direction of a world (z, y, x) vector: ``"L"``, or ``"LA"`` when it is oblique
    (the dominant letter first; components under a quarter of the largest are left out)."""
    vector = np.asarray(vector, dtype=float)
    size = np.abs(vector)
    if not size.max() > 0:
        raise ValueError("a zero vector has no direction")
    letters = []
    for axis in np.argsort(-size, kind="stable"):
        if size[axis] >= SECOND_LETTER_FRACTION * size.max():
            letters.append(AXIS_LETTERS[int(axis)][0 if vector[axis] > 0 else 1])
    return "".join(letters)


def edge_letters(affine, displayed=(1, 2), orientation2d=("down", "right")) -> dict[str, str]:
    """{"top", "bottom", "left", "right": letters} of a view showing index axes ``displayed``
    (rows, columns) of a grid placed by ``affine`` (4×4, index → world (z, y, x) LPS mm), with
    rows/columns increasing ``orientation2d`` on the screen."""
    linear = np.asarray(affine, dtype=float)[:3, :3]
    rows, cols = (int(a) for a in displayed)
    row_dir, col_dir = linear[:, rows], linear[:, cols]
    vertical, horizontal = orientation2d
    if vertical not in ("down", "up") or horizontal not in ("right", "left"):
        raise ValueError(f"orientation2d is ('down'|'up', 'right'|'left'), not {orientation2d!r}")
    down = row_dir if vertical == "down" else -row_dir
    right = col_dir if horizontal == "right" else -col_dir
    return {"top": direction_letters(-down), "bottom": direction_letters(down),
            "left": direction_letters(-right), "right": direction_letters(right)}


def plane_letters(plane: str) -> dict[str, str]:
    """Edge letters of the viewer's ``plane`` (world axes shown, radiological orientation)."""
    return edge_letters(np.eye(4), DISPLAYED_AXES[_plane(plane)], SCREEN_ORIENTATION[plane])


def acquisition_plane(affine, tolerance_degrees: float = 1.0) -> str:
    """The plane a volume's slices were acquired in, from its affine's slice direction (index
    axis 0): ``axial``/``coronal``/``sagittal``, or ``oblique`` when the in-plane or slice axes
    are tilted more than ``tolerance_degrees`` off the patient's axes."""
    linear = np.asarray(affine, dtype=float)[:3, :3]
    columns = linear / np.linalg.norm(linear, axis=0)
    cos_limit = np.cos(np.radians(tolerance_degrees))
    if np.any(np.abs(columns).max(axis=0) < cos_limit):
        return "oblique"
    normal_axis = int(np.argmax(np.abs(columns[:, 0])))
    return {0: "axial", 1: "coronal", 2: "sagittal"}[normal_axis]


def plane_image(data, affine, plane: str, point) -> np.ndarray:
    """The 2-D picture a viewer shows of ``plane`` through world ``point`` (z, y, x), row 0 at
    the top: ``data`` on an axis-aligned grid (``affine`` a positive diagonal, e.g. from
    ``reslice.place_on``), the slice nearest to the point, rows and columns turned as on screen."""
    affine = np.asarray(affine, dtype=float)
    axis = slice_axis(plane)
    index = (np.asarray(point, dtype=float)[axis] - affine[axis, 3]) / affine[axis, axis]
    k = int(np.clip(np.round(index), 0, np.shape(data)[axis] - 1))
    image = np.take(np.asarray(data), k, axis=axis)   # the two remaining axes keep their order
    vertical, horizontal = SCREEN_ORIENTATION[plane]
    if vertical == "up":
        image = image[::-1]
    if horizontal == "left":
        image = image[:, ::-1]
    return image


def plane_views(ndim: int = 3) -> dict[str, dict]:
    """Everything a canvas needs to show each plane of the three-plane layout: napari
    ``dims_order``, camera ``orientation2d`` and the edge ``letters``, keyed by plane."""
    return {plane: {"dims_order": dims_order(plane, ndim), "orientation2d": SCREEN_ORIENTATION[plane],
                    "letters": plane_letters(plane)} for plane in PLANES}


def start_point(affine, shape, point) -> tuple[float, float, float]:
    """Where a three-plane view of a volume (``affine`` index → world, ``shape``) starts: the
    world ``point`` (z, y, x) the grid reads at when it lies inside the volume, else its centre."""
    affine = np.asarray(affine, dtype=float)
    point = np.asarray(point, dtype=float)[-3:]
    index = np.linalg.solve(affine[:3, :3], point - affine[:3, 3])
    if np.all(index >= -0.5) and np.all(index <= np.asarray(shape[-3:], dtype=float) - 0.5):
        return tuple(float(v) for v in point)
    centre = (np.asarray(shape[-3:], dtype=float) - 1) / 2
    return tuple(float(v) for v in affine[:3, :3] @ centre + affine[:3, 3])
