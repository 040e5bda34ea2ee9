"""Display windows from foreground percentiles: synthetic scans with known answers, and the
real T1 / T2 (TCIA STS_001)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

from napari_harm3.core.mri.windowing import (
    WINDOW_PRESETS,
    auto_window,
    background_threshold,
    dicom_windows,
    foreground_values,
    full_range_window,
    soft_tissue_window,
    window_limits,
    window_preset_names,
)


def _phantom(seed=0):
    """60 % air (noise 0-20), 35 % muscle ~ N(300, 30), 5 % fat ~ N(900, 40), one hot voxel."""
    rng = np.random.default_rng(seed)
    n = 200_000
    values = np.concatenate(
        [rng.uniform(0, 20, int(n * 0.60)), rng.normal(300, 30, int(n * 0.35)), rng.normal(900, 40, int(n * 0.05))]
    )
    values[0] = 50_000.0
    return rng.permutation(values).reshape(50, 40, 100).astype(np.float32)


def test_background_is_ignored_and_tissue_keeps_its_contrast():
    data = _phantom()
    low, high = auto_window(data)
    assert 20 < background_threshold(data.ravel()) < 200
    assert 150 < low < 300 - 2 * 30  # below nearly all muscle, above the air
    assert 900 < high < 1100  # the fat, not the single hot voxel
    fg = foreground_values(data)
    assert fg.min() > 20 and fg.size == pytest.approx(0.40 * data.size, rel=0.02)


def test_soft_tissue_window_is_narrower_and_inside_auto():
    data = _phantom()
    auto_low, auto_high = auto_window(data)
    soft_low, soft_high = soft_tissue_window(data)
    assert auto_low <= soft_low < soft_high <= auto_high
    assert soft_high - soft_low < auto_high - auto_low


def test_full_range_and_degenerate_inputs():
    data = _phantom()
    assert full_range_window(data) == (pytest.approx(float(data.min())), 50_000.0)
    with_nan = data.copy()
    with_nan[0, 0, :10] = np.nan
    with_nan[1, 0, :3] = np.inf
    assert np.all(np.isfinite(auto_window(with_nan))) and np.all(np.isfinite(full_range_window(with_nan)))
    for name, window in WINDOW_PRESETS.items():
        low, high = window(np.full((4, 4, 4), 7, np.uint16))
        assert low < high, name
        low, high = window(np.full((2, 2, 2), np.nan))
        assert low < high, name
        low, high = window(np.zeros((3, 3, 3), bool))
        assert low < high, name
    assert isinstance(auto_window(np.arange(100, dtype=np.int16))[0], float)


def test_presets_are_named_functions():
    assert set(WINDOW_PRESETS) == {"auto", "soft tissue", "full range"}
    assert WINDOW_PRESETS["auto"] is auto_window


def test_real_t1_and_t2_windows(shared_data):
    from napari_harm3.core.io.mri import read_volume

    for name in ("T1", "T2"):
        data = read_volume(real_file(shared_data, f"mri/sts001_dicom/{name}")).data
        low, high = auto_window(data)
        threshold = background_threshold(data.ravel())
        body, air = data[data > threshold], data[data <= threshold]
        assert np.mean(body < low) < 0.02 and np.mean(body > high) < 0.02  # ≈ 1 % clipped each side
        assert low >= np.percentile(air, 99)  # the window starts above the air noise, not at 0
        assert 0 <= low < np.median(body) < high <= data.max()


def test_dicom_window_presets_join_the_list():
    metadata = {"window_presets": (
        {"center": 400.0, "width": 801.0, "explanation": "BRAIN"},
        {"center": 362.0, "width": 690.0, "explanation": ""},
        {"center": 10.0, "width": 0.0, "explanation": "broken"},      # width 0: not a window
    )}
    own = dicom_windows(metadata)
    assert list(own) == ["DICOM: BRAIN", "DICOM: C 362 W 690"]
    assert own["DICOM: BRAIN"] == (pytest.approx(-0.5), pytest.approx(799.5))  # c − 0.5 ∓ (w − 1)/2
    assert window_preset_names(metadata) == ["auto", "soft tissue", "full range", *own]
    assert window_preset_names({"format": "NIfTI"}) == list(WINDOW_PRESETS)
    data = _phantom()
    assert window_limits("DICOM: BRAIN", data, metadata) == own["DICOM: BRAIN"]
    assert window_limits("auto", data, metadata) == auto_window(data)
    with pytest.raises(ValueError, match="unknown window preset 'bone'.*DICOM: BRAIN"):
        window_limits("bone", data, metadata)


def test_real_dicom_window_is_offered(shared_data):
    from napari_harm3.core.io.mri import read_volume

    volume = read_volume(real_file(shared_data, "mri/sts001_dicom/T2"))
    names = window_preset_names(volume.metadata)
    assert "DICOM: C 362 W 690" in names
    low, high = window_limits("DICOM: C 362 W 690", volume.data, volume.metadata)
    assert (low, high) == (pytest.approx(362 - 0.5 - 344.5), pytest.approx(362 - 0.5 + 344.5))
