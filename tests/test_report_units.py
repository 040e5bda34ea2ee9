"""Report building blocks: key slices, attention painting, JSON arrays, de-identification text rules."""

from __future__ import annotations

import numpy as np


def test_key_slice_prefers_mask_then_gradcam_then_centre():
    from napari_harm3.core.report.figures import key_slice

    mask = np.zeros((5, 4, 4), bool)
    mask[1, :2, :2] = True
    mask[3, :, :3] = True
    cam = np.zeros((5, 4, 4))
    cam[4, 1, 1] = 0.9
    assert key_slice(mask, cam, 5) == (3, "largest tumour cross-section")
    assert key_slice(None, cam, 5) == (4, "Grad-CAM peak")
    assert key_slice(np.zeros_like(mask), np.zeros_like(cam), 5) == (2, "volume centre")


def test_percentile_ranks():
    from napari_harm3.core.explain.patch_scores import percentile_ranks

    assert percentile_ranks(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert percentile_ranks(np.array([1.0, 1.0])).tolist() == [0.5, 0.5]
    assert percentile_ranks(np.array([0.3])).tolist() == [1.0]


def test_array_json_preview_is_small_and_nan_safe():
    import json

    from napari_harm3.core.report.arrays import array_to_json

    image = np.arange(200 * 100, dtype=np.float32).reshape(200, 100)
    image[:4, :4] = np.nan
    data = array_to_json(image, max_side=64)
    assert data["shape"] == [200, 100] and max(data["preview_shape"]) <= 64
    assert data["preview"][0][0] is None and data["max"] == float(image[np.isfinite(image)].max())
    json.dumps(data, allow_nan=False)
    rgb = array_to_json(np.full((8, 8, 3), 200, np.uint8))
    assert rgb["preview"][0][0] == [200, 200, 200]


def test_deidentification_scrubs_free_text_and_paths():
    from napari_harm3.core.report.deidentify import deidentify_report, pseudonym
    from napari_harm3.core.report.model import CaseSummary, InputFile, Report

    case = CaseSummary(case_id="HN-0042", patient_name="Doe^Jane", patient_id="PID77", birth_date="1961-02-03",
                       study_dates=(("t1_pre", "2023-04-05"),), slide="/data/HN-0042/slide.svs")
    report = Report(case=case, pcr=None, survival=None,
                    inputs=(InputFile("t1_pre", "/data/HN-0042/HN-0042_t1.nii.gz", "ab" * 32),),
                    notes=("Jane Doe (PID77) scanned 20230405: see /data/HN-0042/notes.txt; T1/T2 ok",))
    clean = deidentify_report(report)
    alias = pseudonym("HN-0042")
    text = repr(clean.to_json_dict())
    for secret in ("HN-0042", "Jane", "Doe", "PID77", "1961", "2023-04-05", "20230405", "/data/"):
        assert secret not in text
    assert clean.inputs[0].path == f"{alias}_t1.nii.gz" and clean.case.slide == "slide.svs"
    assert clean.notes[0].endswith("see notes.txt; T1/T2 ok")
