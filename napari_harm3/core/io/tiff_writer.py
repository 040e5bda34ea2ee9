"""Write pyramidal, tiled TIFFs in Aperio SVS layout that OpenSlide and tiffslide both read.

Layout (what Aperio scanners write, and what both readers parse):

* page 0: level 0, tiled, ``ImageDescription = "Aperio Image Library … |AppMag = 20|MPP = 0.5"``
  (OpenSlide reports ``openslide.mpp-x`` / ``openslide.objective-power`` from it, tiffslide
  ``tiffslide.mpp-x`` / ``tiffslide.objective-power``); TIFF resolution tags carry the same mpp;
* page 1: thumbnail, untiled (always written: both readers take page 1 as the thumbnail);
* pages 2…: the lower levels, tiled;
* then ``label`` (NewSubfileType 1) and ``macro`` (NewSubfileType 9), untiled, if given.

**Downsampling is an exact 2×2 box mean.** Level k+1 pixel (r, c) is the mean of level k
pixels (2r…2r+1, 2c…2c+1), rounded half up: ``(a + b + c + d + 2) // 4``, computed on the
uint8 values of level k before compression. A level's size is ``floor(size / 2)`` of the
level above (an odd last row/column is dropped), so the box grid never straddles pixels:
a texture of period 2 at level k averages out exactly at level k+1 (the synthetic slides
rely on this). Levels halve while the smaller side is at least ``min_level_size``; the
coarsest level is the first one below it.

Streaming: with ``shape`` + ``tile_source`` the image is requested tile by tile in
row-major order and level 0 is never held in memory. Each lower level is built from the
one above in bands one tile high (about ``2 × tile_size × width/2 × 3`` bytes in all),
encoded at once and spooled to a temporary file next to the output, then copied into its
page. The output appears under its final name only when complete (``atomic_path``).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from ..atomic import atomic_path
from ..progress import ProgressFn, report

TileSource = Callable[[int, int, int, int], np.ndarray]

APERIO_HEADER = "Aperio Image Library v12.0.15 (napari-harm3)"
ASSOCIATED_NAMES = ("thumbnail", "label", "macro")
_COMPRESSION_NAMES = {"jpeg": "JPEG/RGB", "lzw": "LZW", "zlib": "DEFLATE", None: "RAW"}
_KEEP_RAW_PIXELS = 4 * 1024 * 1024  # levels this small are kept whole for the thumbnail
_THUMBNAIL_SIDE = 1024
_BIGTIFF_BYTES = 2**31  # uncompressed pyramid above this → BigTIFF


def box_mean_2x2(block: np.ndarray) -> np.ndarray:
    """Exact 2×2 box mean of an (h, w, 3) uint8 block → (h//2, w//2, 3), rounded half up.

    Uses OpenCV's area resize, which for an exact factor of 2 on uint8 computes
    ``(a + b + c + d + 2) >> 2`` (tests check it against the numpy definition); about 40×
    faster than numpy's strided sums.
    """
    h, w = block.shape[0] // 2, block.shape[1] // 2
    if h == 0 or w == 0:
        return np.empty((h, w, block.shape[2]), np.uint8)
    return cv2.resize(np.ascontiguousarray(block[: 2 * h, : 2 * w]), (w, h), interpolation=cv2.INTER_AREA)


def level_shapes(height: int, width: int, min_level_size: int) -> list[tuple[int, int]]:
    """(height, width) per level: halve (floor) while the smaller side >= ``min_level_size``."""
    shapes = [(int(height), int(width))]
    while min(shapes[-1]) >= min_level_size and min(shapes[-1]) >= 2:
        h, w = shapes[-1]
        shapes.append((h // 2, w // 2))
    return shapes


def _tile_encoder(compression, quality: int):
    """(encode(tile) -> bytes, tifffile write kwargs) for full-size (T, T, 3) uint8 tiles."""
    if compression == "jpeg":
        # exactly what tifffile itself writes for JPEG RGB: YCbCr, 2×2 chroma subsampling
        def encode(tile):
            return imagecodecs.jpeg8_encode(
                tile, level=quality, colorspace="RGB", outcolorspace="YCBCR", subsampling=(2, 2)
            )

        return encode, {"compression": "jpeg", "compressionargs": {"level": quality}}
    if compression == "lzw":
        return (lambda tile: imagecodecs.lzw_encode(tile.tobytes())), {"compression": "lzw"}
    if compression == "zlib":
        return (lambda tile: imagecodecs.zlib_encode(tile.tobytes())), {"compression": "zlib"}
    if compression is None:
        return (lambda tile: tile.tobytes()), {"compression": None}
    raise ValueError(f"compression must be 'jpeg', 'lzw', 'zlib' or None, not {compression!r}")


class _CachedEncoder:
    """Re-use the encoding of a tile identical to a recent one (background, repeated texture).

    The key is a sparse sample of the tile; a hit is confirmed by comparing every pixel, so
    the output is exactly what encoding would give. Holds at most ``size`` tiles.
    """

    def __init__(self, encode, size: int = 64):
        self.encode = encode
        self.size = size
        self.recent: OrderedDict = OrderedDict()

    def __call__(self, tile: np.ndarray) -> bytes:
        key = tile[::16, ::16].tobytes()
        hit = self.recent.get(key)
        if hit is not None and np.array_equal(hit[0], tile):
            self.recent.move_to_end(key)
            return hit[1]
        data = self.encode(tile)
        self.recent[key] = (tile.copy(), data)
        if len(self.recent) > self.size:
            self.recent.popitem(last=False)
        return data


def _full_tile(tile: np.ndarray, size: int) -> np.ndarray:
    """Pad an edge tile to size × size by repeating its last row/column (clean JPEG edges)."""
    h, w = tile.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(tile)
    return np.pad(tile, ((0, size - h), (0, size - w), (0, 0)), mode="edge")


class _LevelBuilder:
    """Builds one level ≥ 1 band by band from the level above, spooling encoded tiles."""

    def __init__(self, shape, tile_size, encode, spool_dir: Path, keep_raw: bool):
        self.height, self.width = shape
        self.tile_size = tile_size
        self.encode = encode
        self.band = np.empty((tile_size, self.width, 3), dtype=np.uint8)
        self.band_y0 = 0
        self.spool = tempfile.TemporaryFile(dir=spool_dir, prefix=".harm3-level-", suffix=".partial")
        self.tile_lengths: list[int] = []
        self.child: _LevelBuilder | None = None
        self.raw = np.empty((self.height, self.width, 3), np.uint8) if keep_raw else None

    def put(self, y: int, x: int, block: np.ndarray) -> None:
        """Place ``block`` (already box-averaged from the level above) at level row y, col x."""
        rows = slice(y - self.band_y0, y - self.band_y0 + block.shape[0])
        self.band[rows, x : x + block.shape[1]] = block

    def advance(self, rows_ready: int) -> None:
        """Flush every band whose rows are all produced (``rows_ready`` rows of this level)."""
        while self.band_y0 < self.height and min(self.band_y0 + self.tile_size, self.height) <= rows_ready:
            self._flush_band()

    def _flush_band(self) -> None:
        band_h = min(self.tile_size, self.height - self.band_y0)
        band = self.band[:band_h]
        for x0 in range(0, self.width, self.tile_size):
            data = self.encode(_full_tile(band[:, x0 : x0 + self.tile_size], self.tile_size))
            self.spool.write(data)
            self.tile_lengths.append(len(data))
        if self.raw is not None:
            self.raw[self.band_y0 : self.band_y0 + band_h] = band
        if self.child is not None:
            self.child.put(self.band_y0 // 2, 0, box_mean_2x2(band))
            self.child.advance((self.band_y0 + band_h) // 2)
        self.band_y0 += self.tile_size

    def encoded_tiles(self) -> Iterator[bytes]:
        """The spooled tiles in row-major order (to be written as this level's page)."""
        self.spool.seek(0)
        for length in self.tile_lengths:
            yield self.spool.read(length)

    def close(self) -> None:
        self.spool.close()


def _checked_tile(tile, y0, x0, h, w) -> np.ndarray:
    tile = np.asarray(tile)
    if tile.shape != (h, w, 3) or tile.dtype != np.uint8:
        raise ValueError(
            f"tile_source({y0}, {x0}, {h}, {w}) returned {tile.dtype} {tile.shape}; expected uint8 {(h, w, 3)}"
        )
    return tile


def _level0_tiles(shape, tile_size, tile_source, encode, child, keep_raw, progress) -> Iterator[bytes]:
    """Yield level 0's encoded tiles in row-major order, feeding the lower levels as it goes.

    All work for a tile happens *before* its yield: tifffile closes the iterator after
    taking the last tile, so code after the final yield would never run.
    """
    height, width = shape
    n_rows = -(-height // tile_size)
    for row in range(n_rows):
        y0 = row * tile_size
        h = min(tile_size, height - y0)
        for x0 in range(0, width, tile_size):
            w = min(tile_size, width - x0)
            tile = _checked_tile(tile_source(y0, x0, h, w), y0, x0, h, w)
            if keep_raw is not None:
                keep_raw[y0 : y0 + h, x0 : x0 + w] = tile
            if child is not None:
                child.put(y0 // 2, x0 // 2, box_mean_2x2(tile))
                if x0 + w == width:
                    child.advance((y0 + h) // 2)
            if x0 + w == width:
                report(progress, (row + 1) / n_rows, f"level 0: tile row {row + 1}/{n_rows}")
            yield encode(_full_tile(tile, tile_size))


def _thumbnail(raw_levels: list[np.ndarray]) -> np.ndarray:
    """The largest kept level whose longer side fits 1024 px, else the coarsest, shrunk."""
    fitting = [r for r in raw_levels if max(r.shape[:2]) <= _THUMBNAIL_SIDE]
    if fitting:
        return max(fitting, key=lambda r: r.shape[0] * r.shape[1])
    smallest = min(raw_levels, key=lambda r: r.shape[0] * r.shape[1])
    scale = _THUMBNAIL_SIDE / max(smallest.shape[:2])
    size = (max(1, round(smallest.shape[1] * scale)), max(1, round(smallest.shape[0] * scale)))
    return np.asarray(Image.fromarray(smallest).resize(size, Image.Resampling.BOX))


def _level0_description(shape, tile_size, compression, quality, mpp, objective_power) -> str:
    height, width = shape
    codec = _COMPRESSION_NAMES[compression] + (f" Q={quality}" if compression == "jpeg" else "")
    text = f"{APERIO_HEADER}\r\n{width}x{height} [0,0 {width}x{height}] ({tile_size}x{tile_size}) {codec}"
    if objective_power is not None:
        text += f"|AppMag = {objective_power:g}"
    if mpp is not None:
        text += f"|MPP = {mpp:.6g}"
    return text


def _check_inputs(image, shape, tile_source, mpp, objective_power, tile_size, associated):
    if image is not None:
        if shape is not None or tile_source is not None:
            raise ValueError("give either image, or shape and tile_source, not both")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
        shape = image.shape[:2]
        tile_source = lambda y, x, h, w: image[y : y + h, x : x + w]  # noqa: E731
    elif shape is None or tile_source is None:
        raise ValueError("give image, or both shape=(H, W) and tile_source(y0, x0, h, w)")
    shape = (int(shape[0]), int(shape[1]))
    if min(shape) < 1:
        raise ValueError(f"image shape must be positive, got {shape}")
    if tile_size < 16 or tile_size % 16:
        raise ValueError(f"tile_size must be a multiple of 16, got {tile_size}")
    for name, value in (("mpp", mpp), ("objective_power", objective_power)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    for name, pixels in (associated or {}).items():
        if name not in ASSOCIATED_NAMES:
            raise ValueError(f"associated image {name!r}: Aperio layout knows only {ASSOCIATED_NAMES}")
        pixels = np.asarray(pixels)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"associated image {name!r} must be (h, w, 3) uint8, got {pixels.dtype} {pixels.shape}")
    return image, shape, tile_source


def write_pyramidal_tiff(
    path,
    image=None,
    *,
    shape=None,
    tile_source: TileSource | None = None,
    mpp,
    objective_power=None,
    tile_size: int = 256,
    compression="jpeg",
    quality: int = 90,
    min_level_size: int = 256,
    associated: dict | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Write a tiled pyramidal TIFF (Aperio SVS layout) and return its path.

    ``image``: (H, W, 3) uint8 in memory, or ``shape=(H, W)`` with
    ``tile_source(y0, x0, h, w) -> (h, w, 3) uint8`` for images too big for memory (called
    once per tile, row-major). ``mpp``: microns per level-0 pixel (None writes none, for
    slides whose scale is unknown); ``objective_power`` e.g. 20 or 40. ``compression``:
    "jpeg" (``quality`` 1–100), "lzw", "zlib" or None. ``associated``: optional
    {"thumbnail" | "label" | "macro": (h, w, 3) uint8}; a thumbnail is computed when not
    given. Levels are exact 2×2 box means (see the module docstring). BigTIFF is used when
    the uncompressed pyramid exceeds 2 GiB. Refuses to replace ``path`` unless ``overwrite``.
    """
    image, shape, tile_source = _check_inputs(image, shape, tile_source, mpp, objective_power, tile_size, associated)
    associated = {k: np.ascontiguousarray(v) for k, v in (associated or {}).items()}
    encode, codec_kwargs = _tile_encoder(compression, int(quality))
    encode = _CachedEncoder(encode)
    shapes = level_shapes(*shape, min_level_size)
    path = Path(path)
    bigtiff = sum(h * w * 3 for h, w in shapes) > _BIGTIFF_BYTES
    common = dict(tile=(tile_size, tile_size), photometric="rgb", metadata=None, subfiletype=0, **codec_kwargs)
    if mpp is not None:
        common.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")

    with atomic_path(path, overwrite=overwrite) as tmp:
        # kept whole for the thumbnail: small levels and always the coarsest (short side < min_level_size)
        keep = [h * w <= _KEEP_RAW_PIXELS or i == len(shapes) - 1 for i, (h, w) in enumerate(shapes)]
        builders = [_LevelBuilder(s, tile_size, encode, tmp.parent, k) for s, k in zip(shapes[1:], keep[1:])]
        try:
            for parent, child in zip(builders, builders[1:]):
                parent.child = child
            keep0 = image if image is not None else (np.empty((*shape, 3), np.uint8) if keep[0] else None)
            level0 = _level0_tiles(shape, tile_size, tile_source, encode, builders[0] if builders else None,
                                   None if image is not None else keep0, progress)
            with tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tif:
                tif.write(level0, shape=(*shape, 3), dtype=np.uint8,
                          description=_level0_description(shape, tile_size, compression, quality, mpp, objective_power),
                          **common)
                unfinished = [b for b in builders if b.band_y0 < b.height]
                if unfinished:  # pragma: no cover - a bug, not bad input
                    raise RuntimeError(f"pyramid levels left unfinished: {[(b.height, b.width) for b in unfinished]}")
                raw = [r for r in [keep0, *(b.raw for b in builders)] if r is not None]
                thumb = associated.get("thumbnail")
                thumb = _thumbnail(raw) if thumb is None else thumb
                tif.write(thumb, photometric="rgb", compression="lzw", metadata=None, subfiletype=0,
                          description=f"{APERIO_HEADER}\r\n{shape[1]}x{shape[0]} -> {thumb.shape[1]}x{thumb.shape[0]} - ")
                for builder in builders:
                    h, w = builder.height, builder.width
                    tif.write(builder.encoded_tiles(), shape=(h, w, 3), dtype=np.uint8,
                              description=f"{APERIO_HEADER}\r\n{shape[1]}x{shape[0]} -> {w}x{h}", **common)
                for name, subfiletype in (("label", 1), ("macro", 9)):
                    if name in associated:
                        pixels = associated[name]
                        tif.write(pixels, photometric="rgb", compression="lzw", metadata=None, subfiletype=subfiletype,
                                  description=f"{APERIO_HEADER}\r\n{name} {pixels.shape[1]}x{pixels.shape[0]}")
        finally:
            for builder in builders:
                builder.close()
    return path
