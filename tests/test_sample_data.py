"""Sample data (the demo patient) and the case-manifest reader: LayerData with world affines."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo_manifest():
    from napari_harm3.core.synth.demo import demo_case

    return demo_case()  # generated once into the cache, then reused


def test_demo_patient_layers_line_up_in_world_mm(demo_manifest):
    from napari_harm3._sample_data import demo_patient

    layers = demo_patient()
    images = [l for l in layers if l[2] == "image"]
    labels = [l for l in layers if l[2] == "labels"]
    assert [l[1]["name"] for l in images] == ["T1-pre", "T1-post", "T2-pre", "T2-post"]
    assert len(labels) == 4
    for data, kwargs, _ in images + labels:
        assert data.ndim == 3 and kwargs["affine"].shape == (4, 4) and kwargs["units"] == "mm"
    t1, t2 = images[0], images[2]
    assert t1[0].shape != t2[0].shape  # different grids …
    # … covering the same world box (mm): both grids' corners map to nearly the same place
    for (data, kwargs, _) in (t1, t2):
        lo, hi = kwargs["affine"] @ [0, -0.5, -0.5, 1], kwargs["affine"] @ [0, data.shape[1] - 0.5, data.shape[2] - 0.5, 1]
        assert lo[1:3] == pytest.approx([-100.8, -100.8], abs=0.1) and hi[1:3] == pytest.approx([100.8, 100.8], abs=0.1)
    lo, hi = t1[1]["contrast_limits"]
    assert hi > lo and lo >= float(np.min(t1[0]))
    # masks: integer labels, each on the affine of its own sequence
    mask_data, mask_kwargs, _ = labels[2]
    assert mask_data.dtype.kind in "iu" and mask_data.max() >= 1
    np.testing.assert_allclose(mask_kwargs["affine"], t2[1]["affine"], atol=1e-4)


def test_case_reader_claims_manifests_only(demo_manifest, tmp_path):
    from napari_harm3._reader_case import get_case_reader, read_case_layers

    assert get_case_reader(str(demo_manifest)) is not None
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    for foreign in (str(tmp_path / "notes.yaml"), str(tmp_path / "missing" / "case.yaml"), str(tmp_path),
                    [str(demo_manifest)], 3, None):
        assert get_case_reader(foreign) is None
    layers = read_case_layers(demo_manifest)
    assert [l[2] for l in layers].count("image") == 4 and [l[2] for l in layers].count("labels") == 4


def test_case_reader_bad_manifest_raises_one_line(tmp_path):
    from napari_harm3._reader_case import read_case_layers
    from napari_harm3.core.errors import Harm3Error

    bad = tmp_path / "case.yaml"
    bad.write_text("case_id: [unclosed\n")
    with pytest.raises(Harm3Error) as info:
        read_case_layers(bad)
    assert "case.yaml" in str(info.value) and "\n" not in str(info.value)


def test_view_cli_assigns_files(tmp_path, demo_manifest):
    from napari_harm3.core.cli.view import plan
    from napari_harm3.core.errors import Harm3Error

    assert plan([str(demo_manifest)]) == (demo_manifest, {})
    assert plan([str(demo_manifest.parent)]) == (demo_manifest.parent, {})
    a, b, s = (tmp_path / n for n in ("a.nii.gz", "b.nii.gz", "x.svs"))
    for p in (a, b, s):
        p.write_bytes(b"x")
    manifest, files = plan([str(a), f"t2_post={b}", str(s)])
    assert manifest is None and files == {"t1_pre": str(a), "t2_post": str(b), "slide": str(s)}
    with pytest.raises(Harm3Error, match="no such file"):
        plan([str(tmp_path / "nope.nii.gz")])
    with pytest.raises(Harm3Error, match="given twice"):
        plan([f"t1_pre={a}", f"t1_pre={b}"])
    with pytest.raises(Harm3Error, match="--mpp"):
        plan([str(a)], mpp=-1)
