"""A cohort on a 2-worker local Dask cluster: every slide done, a bad one reported, reruns skip."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3.core.wsi.distributed import extract_cohort, make_client
from napari_harm3.core.wsi.feature_files import SlideFiles, load_clam_features
from napari_harm3.core.wsi.tissue import TissueParams


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    synth = pytest.importorskip("napari_harm3.core.synth.slide_phantom")
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff

    folder = tmp_path_factory.mktemp("cohort")
    paths = []
    for k in range(2):
        image = synth.generate_slide(np.random.SeedSequence(20 + k), s=0.0, c=0.0, f=0.0, size=(1024, 1536)).image
        paths.append(write_pyramidal_tiff(folder / f"case{k}.tif", image, mpp=0.5, tile_size=256))
    broken = folder / "broken.svs"
    broken.write_bytes(b"II*\x00 this is not a slide")
    return paths, broken


def test_two_worker_local_cluster(cohort, tmp_path):
    slides, broken = cohort
    client = make_client(workers=2, processes=False)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        seen = []
        outcomes = extract_cohort(slides + [broken], tmp_path, "texture_stats", mags=(10, 20), batch_size=16,
                                  tissue_params=TissueParams.from_preset("biopsy", a_t=0.1), device="cpu",
                                  client=client, progress=lambda f, m: seen.append(f))
        assert [o.status for o in outcomes] == ["done", "done", "failed"]
        assert "broken.svs" in outcomes[2].message and seen[-1] == 1.0
        for outcome in outcomes[:2]:
            assert outcome.patches[20] > 0 and outcome.patches[10] > 0
            files = SlideFiles.of(tmp_path, "texture_stats", 20, 256, outcome.slide)
            features, coords, attrs = load_clam_features(files.h5)
            assert features.shape == (outcome.patches[20], 42) and attrs["magnification"] == 20.0
        mtime = SlideFiles.of(tmp_path, "texture_stats", 10, 256, "case0").h5.stat().st_mtime_ns
        again = extract_cohort(slides, tmp_path, "texture_stats", mags=(10, 20),
                               tissue_params=TissueParams.from_preset("biopsy", a_t=0.1), device="cpu", client=client)
        assert [o.status for o in again] == ["done", "done"]
        assert SlideFiles.of(tmp_path, "texture_stats", 10, 256, "case0").h5.stat().st_mtime_ns == mtime
    finally:
        client.close()
        client.cluster.close()
