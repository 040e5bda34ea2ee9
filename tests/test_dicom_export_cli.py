"""``harm3 export-dicom``: the real STS_001 DICOM case with the zoo's demo models (de-identified),
a NIfTI case whose only DICOM is the slide, a case with no DICOM at all, an existing output."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from conftest import real_file
from test_dicom_export import assert_valid

pytest.importorskip("yaml")
pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent the intended person name")


@pytest.fixture(autouse=True)
def only_this_command(monkeypatch):
    """The real ``harm3`` entry point with only this command registered (others are tested elsewhere)."""
    from napari_harm3.core.cli import main as cli_main

    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("export_dicom",))


def write_case(folder, manifest: dict):
    import yaml

    folder.mkdir()
    (folder / "case.yaml").write_text(yaml.safe_dump(manifest))
    return folder


@pytest.fixture
def empty_zoo(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    monkeypatch.setenv("HARM3_MODELS", str(zoo))
    return zoo


def test_export_dicom_on_the_real_sts001_case(shared_data, tmp_path, capsys):
    from napari_harm3.core.cli.main import main
    from napari_harm3.core.io.dicom_export.segmentation import read_segmentation
    from napari_harm3.core.io.dicom_export.sr import read_report_numbers, referenced_segments
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume
    from napari_harm3.core.models.zoo import read_sums
    from napari_harm3.core.mri.tumour_response import measure_response
    from napari_harm3.core.report.deidentify import pseudonym
    from napari_harm3.core.resources import models_dir

    root = real_file(shared_data, "mri/sts001_dicom")
    case = write_case(tmp_path / "STS_001", {
        "case_id": "STS_001", "mri": {"t1_pre": str(root / "T1"), "t2_pre": str(root / "T2")},
        "masks": {"t1_pre": str(root / "T1_rtstruct"), "t2_pre": str(root / "T2_rtstruct")}})
    out = tmp_path / "dicom"
    assert main(["export-dicom", str(case), "--out", str(out), "--deidentify", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["PDF.dcm", "PM_t1_pre.dcm", "PM_t2_pre.dcm", "SEG_t1_pre.dcm",
                                                     "SEG_t2_pre.dcm", "SR.dcm"]
    assert "Survival analysis not run" in printed and "6 DICOM objects" in printed
    study = str(pydicom.dcmread(next((root / "T1").iterdir()), stop_before_pixels=True).StudyInstanceUID)
    for path in out.iterdir():
        assert_valid(path)
        header = pydicom.dcmread(path, stop_before_pixels=True)
        assert header.PatientID == pseudonym("STS_001") and header.StudyInstanceUID == study
        assert b"STS_001" not in path.read_bytes()
    numbers = read_report_numbers(out / "SR.dcm")
    assert 0.0 <= numbers.pcr.probability <= 1.0 and numbers.pcr.spread > 0 and numbers.pcr.n_models == 5
    assert numbers.pcr.missing_inputs == ("t1_post", "t2_post", "slide") and numbers.survival is None
    assert dict(numbers.pcr.algorithm.weights) == read_sums(models_dir() / "harm3-demo")
    assert numbers.pcr.algorithm.architecture == "HARM3-Fusion"
    # the SR's tumour numbers are tumour_response's, exactly; the SEG holds the RTSTRUCT masks
    t1, t2 = read_volume(root / "T1"), read_volume(root / "T2")
    masks = {"t1_pre": read_mask(root / "T1_rtstruct", reference=t1), "t2_pre": read_mask(root / "T2_rtstruct", reference=t2)}
    expected = [(r.pre.sequence, r.pre.volume_ml, r.pre.longest_axial_diameter_mm) for r in measure_response(masks).responses]
    assert [(t.sequence, t.volume_ml, t.diameter_mm) for t in numbers.tumours] == expected
    segments = read_segmentation(out / "SEG_t1_pre.dcm", t1.affine, t1.shape)
    assert np.array_equal(segments["GTV_Mass"], masks["t1_pre"].data == 1)
    seg_uid = str(pydicom.dcmread(out / "SEG_t1_pre.dcm", stop_before_pixels=True).SOPInstanceUID)
    assert referenced_segments(out / "SR.dcm")["GTV_Mass t1_pre"] == (seg_uid, 1)


def test_nifti_mri_with_a_dicom_slide_writes_the_sr_against_the_slide(shared_data, tmp_path, empty_zoo, capsys):
    from napari_harm3.core.cli.main import main
    from napari_harm3.core.io.dicom_export.encapsulated_pdf import read_encapsulated_pdf
    from napari_harm3.core.io.dicom_export.sr import read_report_numbers

    slide = real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm")
    case = write_case(tmp_path / "case", {
        "case_id": "N1", "mri": {"t1_pre": str(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))},
        "masks": {"t1_pre": str(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz"))},
        "slide": str(slide)})
    out = tmp_path / "dicom"
    assert main(["export-dicom", str(case), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    notes = [line for line in printed if line.startswith("note:")]
    assert "note: segmentations and parametric maps need DICOM MRI sources; t1_pre is NIfTI and left out" in notes
    assert sorted(p.name for p in out.iterdir()) == ["PDF.dcm", "SR.dcm"]
    for path in out.iterdir():
        assert_valid(path)
        assert pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID == \
            pydicom.dcmread(slide, stop_before_pixels=True).StudyInstanceUID
    numbers = read_report_numbers(out / "SR.dcm")
    assert numbers.pcr is None and [t.mask_origin for t in numbers.tumours] == ["NIfTI labels"]
    assert numbers.tumours[0].volume_ml > 0
    assert read_encapsulated_pdf(out / "PDF.dcm").startswith(b"%PDF")


def test_synthetic_case_without_dicom_is_one_line_and_writes_nothing(tmp_path, empty_zoo, capsys):
    """A phantom case (NIfTI MRI, TIFF slide): nothing can reference it, so nothing is written."""
    from napari_harm3.core.cli.main import main
    from napari_harm3.core.synth.cohort import make_case

    make_case(tmp_path / "SYN", seed=3, slide_size=(512, 512))
    out = tmp_path / "dicom"
    assert main(["export-dicom", str(tmp_path / "SYN"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to export as DICOM" in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["SYN", "zoo"]


def test_existing_output_is_refused_before_any_work(tmp_path, capsys):
    from napari_harm3.core.cli.main import main

    out = tmp_path / "dicom"
    out.mkdir()
    (out / "SR.dcm").write_bytes(b"old")
    assert main(["export-dicom", str(tmp_path / "no-such-case"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "SR.dcm").read_bytes() == b"old"


def test_post_series_gets_the_pre_mask_propagated(shared_data):
    """A post series with no mask of its own gets the pre mask of its contrast, moved onto its grid
    (here T2 stands in for both time points: the propagation must then be exact)."""
    from napari_harm3.core.session.dicom_results import series_objects
    from napari_harm3.core.io.dicom_export.common import read_source_series
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume
    from napari_harm3.core.mri.case_volumes import CaseVolumes

    root = real_file(shared_data, "mri/sts001_dicom")
    t2 = read_volume(root / "T2")
    mask = read_mask(root / "T2_rtstruct", reference=t2)
    volumes = CaseVolumes(volumes={"t2_pre": t2, "t2_post": t2}, masks={"t2_pre": mask},
                          original_affines={"t2_pre": t2.affine, "t2_post": t2.affine})
    sources = {"t2_post": read_source_series(root / "T2")}
    (post,) = series_objects(sources, volumes, {})
    assert post.sequence == "t2_post" and post.activation_map is None
    (segment,) = post.segments
    assert segment.label == "GTV_Mass (from T2-pre)" and np.array_equal(segment.mask, mask.data == 1)
    assert segment.propagated_from == "propagated from T2-pre, no registration: same scanner frame of reference"
