"""histolab's side of bench_patching_histolab.py; runs under .venv-histolab (histolab 0.7.0).

    .venv-histolab/bin/python benchmarks/_histolab_peer.py '[{"path": ..., "level": 0, "tile": 256,
                                                             "tissue_percent": 25, "repeats": 3,
                                                             "check_repeats": 1}]'

Prints one JSON line per slide: tiles kept and seconds (best of ``repeats``, or of
``check_repeats`` for "check") of
- ``coords``: ``GridTiler._grid_coordinates_generator`` consumed (what ``extract`` iterates
  before reading anything): the ``TissueMask`` of the slide (thumbnail read + histolab's filter
  chain), its connected regions, and per grid tile the test "> 80 % of the tile in the region";
- ``check``: ``GridTiler._tiles_generator`` with ``check_tissue=True`` consumed: the above, plus
  reading every such tile (``Slide.extract_tile``) and ``Tile.has_enough_tissue(tissue_percent)``,
  which decides which tiles ``extract`` keeps. No PNG is written.
Each repeat makes a new ``Slide`` and ``TissueMask``: both cache (``lazyproperty``, ``lru_cache``),
and a warm cache would time nothing.
"""

import ctypes
import json
import pathlib
import sys
import tempfile
import time

# openslide-python 1.3.1 dlopens "libopenslide.so.1" by name; openslide-bin ships that file but
# 1.3.1 does not know the package. Loading it by path first makes the by-name dlopen find it.
import openslide_bin

ctypes.CDLL(str(pathlib.Path(openslide_bin.__file__).parent / "libopenslide.so.1"))

from histolab.masks import TissueMask  # noqa: E402
from histolab.slide import Slide  # noqa: E402
from histolab.tiler import GridTiler  # noqa: E402


def run(case, check, processed):
    slide = Slide(case["path"], processed_path=processed)
    tiler = GridTiler(tile_size=(case["tile"], case["tile"]), level=case["level"], check_tissue=True,
                      tissue_percent=case["tissue_percent"])
    # what GridTiler.extract does before its loop
    tiler._validate_level(slide)
    tiler.tile_size = tiler._tile_size(slide)
    tiler._validate_tile_size(slide)
    if check:
        return [coords for _, coords in tiler._tiles_generator(slide, TissueMask())]
    return list(tiler._grid_coordinates_generator(slide, TissueMask()))


def main():
    with tempfile.TemporaryDirectory() as processed:
        for case in json.loads(sys.argv[1]):
            out = {"path": case["path"]}
            for key, check in (("coords", False), ("check", True)):
                times = []
                for _ in range(case["check_repeats"] if check else case["repeats"]):
                    start = time.perf_counter()
                    kept = run(case, check, processed)
                    times.append(time.perf_counter() - start)
                out[key] = {"tiles": len(kept), "s": min(times)}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
