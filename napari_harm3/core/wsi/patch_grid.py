"""Patch coordinates over tissue contours, in CLAM's order, with a vectorised inside test.

For each tissue contour (in order) a grid covers its bounding box in level-0 pixels: x from
the box's left edge in steps of ``step`` up to (not including) its right edge, y likewise;
candidates run x outer, y inner (``np.meshgrid(..., indexing="ij")``). A candidate is kept when
the contour function accepts it and its centre is not strictly inside one of the contour's
kept holes. Contour functions (CLAM's names, plus the HARM3-Fusion paper's rule):

``four_pt``       one of the four points centre ± ``size//2 * 0.5`` is inside or on the contour
``four_pt_hard``  all four of those points are inside or on the contour
``center``        the centre (``x + size//2``) is inside or on the contour
``basic``         the top-left corner is inside or on the contour
``corner_any``    one of the patch's four corners (x or x+size, y or y+size) lies in tissue:
                  inside or on the contour and not strictly inside a kept hole

CLAM writes a contour's coordinates only when it has more than one (``len(results) > 1``);
``drop_single_patch_contours`` (default True) reproduces that.

The inside test is the crossing-number test of OpenCV's ``pointPolygonTest`` (without
distance) as one numpy sweep over all probe points of a contour (:func:`polygon_test`): the
same answers (inside / on the edge / outside) for every point, exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import Harm3Error

CONTOUR_FUNCTIONS = ("four_pt", "four_pt_hard", "center", "basic", "corner_any")


def _ring_edges(rings) -> tuple:
    """Edges (a → b, OpenCV's v0 → v) of one closed polygon or of several (a list of them)."""
    if isinstance(rings, np.ndarray):
        rings = [rings]
    rings = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings]
    rings = [r for r in rings if len(r)]
    if not rings:
        empty = np.zeros((0, 2))
        return empty, empty
    return np.concatenate([np.roll(r, 1, axis=0) for r in rings]), np.concatenate(rings)


def _sweep(rows: np.ndarray, point_row: np.ndarray, px: np.ndarray, rings) -> np.ndarray:
    """+1 / 0 / −1 of points (px, rows[point_row]); ``rows`` sorted and unique. See polygon_test."""
    result = np.full(px.shape, -1, dtype=np.int8)
    a, b = _ring_edges(rings)
    if px.size == 0 or len(a) == 0:
        return result
    py = rows[point_row]
    x_lo = min(px.min(), b[:, 0].min()) - 1.0
    width = max(px.max(), b[:, 0].max()) - x_lo + 2.0  # keys: row · width + (x − x_lo), exact
    point_key = point_row * width + (px - x_lo)

    # crossings of the non-horizontal edges with the rows they span: (edge, row) pairs
    sloped = a[:, 1] != b[:, 1]
    ea, eb = a[sloped], b[sloped]
    lo = np.searchsorted(rows, np.minimum(ea[:, 1], eb[:, 1]), "left")
    hi = np.searchsorted(rows, np.maximum(ea[:, 1], eb[:, 1]), "left")
    counts = np.maximum(hi - lo, 0)
    edge_of = np.repeat(np.arange(len(ea)), counts)
    row_of = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    xa, ya, xb, yb = ea[edge_of, 0], ea[edge_of, 1], eb[edge_of, 0], eb[edge_of, 1]
    x_cross = xa + (rows[row_of] - ya) * (xb - xa) / (yb - ya)
    pair_key = row_of * width + (x_cross - x_lo)
    order = np.argsort(pair_key, kind="stable")
    cross_key = pair_key[order]
    row_end = np.searchsorted(cross_key, (np.arange(len(rows)) + 1) * width, "left")
    after = np.searchsorted(cross_key, point_key, "right")
    result[(row_end[point_row] - after) % 2 == 1] = 1

    on_edge = np.zeros(px.shape, dtype=bool)
    # boundary 1: a crossing exactly at the point (float keys find candidates, exact products decide)
    if len(cross_key):
        for index in (after - 2, after - 1, after):
            index = np.clip(index, 0, len(cross_key) - 1)
            close = np.abs(cross_key[index] - point_key) < 1e-6
            if close.any():
                pair = order[index[close]]
                on_edge[close] |= ((py[close] - ya[pair]) * (xb[pair] - xa[pair])
                                   == (px[close] - xa[pair]) * (yb[pair] - ya[pair]))
    # boundary 2: the point is a vertex
    vertex_key = np.unique(b[:, 1] * 2 * (1 << 31) + b[:, 0] * 2)
    on_edge |= np.isin(py * 2 * (1 << 31) + px * 2, vertex_key)
    # boundary 3: the point lies on a horizontal edge of its row
    fa, fb = a[~sloped], b[~sloped]
    row_index = np.minimum(np.searchsorted(rows, fa[:, 1]), len(rows) - 1)
    hit = rows[row_index] == fa[:, 1]
    if hit.any():
        base = row_index[hit] * width - x_lo
        starts = np.sort(base + np.minimum(fa[hit, 0], fb[hit, 0]))
        ends = np.sort(base + np.maximum(fa[hit, 0], fb[hit, 0]))
        on_edge |= np.searchsorted(starts, point_key, "right") > np.searchsorted(ends, point_key, "left")
    result[on_edge] = 0
    return result


def polygon_test(points: np.ndarray, polygon) -> np.ndarray:
    """OpenCV's ``pointPolygonTest(polygon, pt, False)`` for many points: +1 in, 0 on, −1 out.

    ``points`` (N, 2) (x, y), integer or half-integer; ``polygon`` (M, 1, 2) or (M, 2) integer,
    or a list of disjoint polygons (e.g. a contour's holes: +1 = strictly inside one of them).
    OpenCV's crossing-number rule, reorganised as one sweep with no Python loop over points or
    rows: for each row y a point sits on, the edges spanning it (``min(y0, y1) <= y <
    max(y0, y1)``) cross it at x*; a point is inside when an odd number of crossings lie to its
    right, and on the boundary when it equals a crossing (exact products, as OpenCV), is a
    vertex, or lies on a horizontal edge. Exact for coordinates below 2**22.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros(0, dtype=np.int8)
    rows, point_row = np.unique(points[:, 1], return_inverse=True)
    return _sweep(rows, point_row.reshape(-1), points[:, 0], polygon)


def grid_polygon_test(xs: np.ndarray, ys: np.ndarray, polygon, offsets=((0, 0),)) -> np.ndarray:
    """:func:`polygon_test` of the grid points (x + dx, y + dy) for x in ``xs``, y in ``ys``
    (both increasing) and each offset (dx, dy), in one sweep: (n_offsets, len(xs), len(ys))
    int8, x outer and y inner (CLAM's candidate order)."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    shape = (len(offsets), xs.size, ys.size)
    if xs.size == 0 or ys.size == 0:
        return np.full(shape, -1, dtype=np.int8)
    rows = np.unique(np.concatenate([ys + dy for dy in np.unique(offsets[:, 1])]))
    point_row = np.stack([np.broadcast_to(np.searchsorted(rows, ys + dy)[None, :], shape[1:])
                          for dy in offsets[:, 1]])
    px = np.stack([np.broadcast_to((xs + dx)[:, None], shape[1:]) for dx in offsets[:, 0]])
    return _sweep(rows, point_row.ravel(), px.ravel(), polygon).reshape(shape)


def _probe_offsets(contour_fn: str, size: int) -> np.ndarray:
    """Offsets from a patch's top-left of the points the contour function tests."""
    half = size // 2
    if contour_fn in ("four_pt", "four_pt_hard"):
        shift = int(size // 2 * 0.5)
        if shift == 0:
            return np.array([[half, half]])
        return np.array([[half - shift, half - shift], [half + shift, half + shift],
                         [half + shift, half - shift], [half - shift, half + shift]])
    if contour_fn == "center":
        return np.array([[half, half]])
    if contour_fn == "basic":
        return np.array([[0, 0]])
    if contour_fn == "corner_any":
        return np.array([[0, 0], [size, 0], [0, size], [size, size]])
    raise Harm3Error(f"unknown contour function {contour_fn!r}; choose one of {', '.join(CONTOUR_FUNCTIONS)}")


def grid_axes(contour: np.ndarray, step: int, patch_size: int, level0_dim=None,
              use_padding: bool = True) -> tuple:
    """(xs, ys) int64 of the candidate grid over the contour's bounding box (CLAM's ranges)."""
    x0, y0, w, h = cv2.boundingRect(np.asarray(contour, dtype=np.int32))
    stop_x, stop_y = x0 + w, y0 + h
    if not use_padding:
        if level0_dim is None:
            raise Harm3Error("use_padding=False needs the slide's level-0 size")
        stop_x = min(stop_x, level0_dim[0] - patch_size + 1)
        stop_y = min(stop_y, level0_dim[1] - patch_size + 1)
    return np.arange(x0, stop_x, step, dtype=np.int64), np.arange(y0, stop_y, step, dtype=np.int64)


def candidate_grid(contour: np.ndarray, step: int, patch_size: int, level0_dim=None,
                   use_padding: bool = True) -> np.ndarray:
    """Grid candidates (N, 2) int64 over the contour's bounding box, x outer and y inner."""
    xs, ys = grid_axes(contour, step, patch_size, level0_dim, use_padding)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def grid_patch_mask(xs: np.ndarray, ys: np.ndarray, contour: np.ndarray, holes, patch_size: int,
                    contour_fn: str = "four_pt") -> np.ndarray:
    """Keep-mask (len(xs), len(ys)) of the candidates xs × ys (top-left corners, level 0)."""
    offsets = _probe_offsets(contour_fn, patch_size)
    inside = grid_polygon_test(xs, ys, contour, offsets) >= 0  # (n_offsets, X, Y)
    if contour_fn == "corner_any":
        if holes:
            inside &= grid_polygon_test(xs, ys, holes, offsets) <= 0
        return inside.any(axis=0)
    keep = inside.all(axis=0) if contour_fn == "four_pt_hard" else inside.any(axis=0)
    if holes and keep.any():
        keep &= grid_polygon_test(xs, ys, holes, [(patch_size / 2.0, patch_size / 2.0)])[0] <= 0
    return keep


def patch_coordinates(contours, holes, patch_size: int, step: int | None = None,
                      contour_fn: str = "four_pt", level0_dim=None, use_padding: bool = True,
                      drop_single_patch_contours: bool = True) -> np.ndarray:
    """Level-0 top-left coordinates (N, 2) int64 of the kept patches, contour by contour.

    ``patch_size`` and ``step`` are in level-0 pixels (CLAM's ``ref_patch_size``).
    """
    _probe_offsets(contour_fn, patch_size)  # validates the name early
    step = int(step or patch_size)
    kept = []
    for contour, contour_holes in zip(contours, holes):
        xs, ys = grid_axes(contour, step, patch_size, level0_dim, use_padding)
        if xs.size == 0 or ys.size == 0:
            continue
        keep = grid_patch_mask(xs, ys, contour, contour_holes, patch_size, contour_fn)
        ix, iy = np.nonzero(keep)  # row-major: x outer, y inner
        if len(ix) > (1 if drop_single_patch_contours else 0):
            kept.append(np.stack([xs[ix], ys[iy]], axis=1))
    return np.concatenate(kept) if kept else np.zeros((0, 2), dtype=np.int64)
