"""DICOM objects written from the real STS_001 series: each passes dciodvfy (dicom3tools) with no
error and reads back to the same values (SEG Dice 1.0, parametric map within 1e-6, SR numbers exact)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import real_file
from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.io.dicom_export.case_objects import atomic_folder
from napari_harm3.core.io.dicom_export.common import ExportSettings, read_source_instance, read_source_series, save_dataset
from napari_harm3.core.io.dicom_export.encapsulated_pdf import build_encapsulated_pdf, read_encapsulated_pdf
from napari_harm3.core.io.dicom_export.parametric_map import build_parametric_map, read_parametric_map
from napari_harm3.core.io.dicom_export.segmentation import (SegmentSpec, build_segmentation, read_segmentation,
                                                            segments_of)
from napari_harm3.core.io.dicom_export.sr import (AlgorithmInfo, PcrNumbers, ReportNumbers, SurvivalNumbers,
                                                  TumourNumbers, build_structured_report, read_report_numbers,
                                                  referenced_segments)

pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent the intended person name")


def dciodvfy(path) -> tuple[list, list]:
    """(errors, warnings) dicom3tools' dciodvfy reports for a file; skips when it is not installed."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    lines = (result.stdout + result.stderr).splitlines()
    return [l for l in lines if l.startswith("Error")], [l for l in lines if l.startswith("Warning")]


def assert_valid(path) -> list:
    errors, warnings = dciodvfy(path)
    assert not errors, f"{Path(path).name}: {errors}"
    return warnings


def dice(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.sum(a & b) / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def sts001(shared_data):
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume

    root = real_file(shared_data, "mri/sts001_dicom")
    t1, t2 = read_volume(root / "T1"), read_volume(root / "T2")
    return {"t1": t1, "t2": t2, "t1_mask": read_mask(root / "T1_rtstruct", reference=t1),
            "t2_mask": read_mask(root / "T2_rtstruct", reference=t2),
            "t1_source": read_source_series(root / "T1"), "t2_source": read_source_series(root / "T2")}


def smooth_map(shape) -> np.ndarray:
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return np.clip(np.exp(-3 * (k ** 2 + j ** 2 + i ** 2)) + 1e-7 * np.sin(50 * i), 0, 1).astype(np.float32)


def test_segmentation_round_trip_with_a_propagated_mask(sts001, tmp_path):
    from napari_harm3.core.mri.tumour_response import propagate_mask

    t2, source = sts001["t2"], sts001["t2_source"]
    moved = propagate_mask(sts001["t1_mask"], t2, from_sequence="t1_pre")
    segments = segments_of(sts001["t2_mask"]) + [
        SegmentSpec("GTV_Mass (from T1-pre)", moved.data == 1, propagated_from=moved.metadata["propagated_from"])]
    seg = build_segmentation(source, t2.affine, segments, ExportSettings(), series_number=912)
    path = save_dataset(seg, tmp_path / "SEG.dcm")
    warnings = assert_valid(path)
    back = read_segmentation(path, t2.affine, t2.shape)
    assert list(back) == ["GTV_Mass", "GTV_Edema", "GTV_Mass (from T1-pre)"]
    for spec in segments:
        assert dice(back[spec.label], spec.mask) == 1.0 and np.array_equal(back[spec.label], spec.mask)
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == source.study_uid and ds.FrameOfReferenceUID == source.frame_of_reference_uid
    assert ds.SeriesInstanceUID != source.series_uid and ds.SeriesNumber == 912
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series_uid
    source_uids = {str(d.SOPInstanceUID) for d in source.datasets}
    frame_refs = [str(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
                  for f in ds.PerFrameFunctionalGroupsSequence]
    assert len(frame_refs) == ds.NumberOfFrames and set(frame_refs) <= source_uids   # each frame names its image
    algorithms = [str(s.SegmentAlgorithmType) for s in ds.SegmentSequence]
    assert algorithms == ["MANUAL", "MANUAL", "SEMIAUTOMATIC"]
    assert ds.PatientName == "STS_001" and all("Error" not in w for w in warnings)


def test_parametric_map_round_trip(sts001, tmp_path):
    t1, source = sts001["t1"], sts001["t1_source"]
    values = smooth_map(t1.shape)
    pm = build_parametric_map(source, values, t1.affine, ExportSettings(), series_number=920, title="T1-pre")
    path = save_dataset(pm, tmp_path / "PM.dcm")
    assert_valid(path)
    back = read_parametric_map(path, t1.affine, t1.shape)
    assert back.shape == t1.shape and np.abs(back - values).max() <= 1e-6
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "1" and mapping.DoubleFloatRealWorldValueLastValueMapped == 1.0
    assert ds.FrameOfReferenceUID == source.frame_of_reference_uid and ds.StudyInstanceUID == source.study_uid


def test_map_or_mask_on_another_grid_is_refused(sts001):
    with pytest.raises(Harm3Error, match="shape"):
        build_parametric_map(sts001["t1_source"], smooth_map(sts001["t2"].shape), sts001["t2"].affine,
                             ExportSettings(), series_number=920)
    shifted = sts001["t1"].affine.copy()
    shifted[0, 3] += 2.6   # half a slice
    with pytest.raises(Harm3Error, match="not on the grid"):
        build_segmentation(sts001["t1_source"], shifted, segments_of(sts001["t1_mask"]), ExportSettings(), 910)
    with pytest.raises(Harm3Error, match=r"\[0, 1\]"):
        build_parametric_map(sts001["t1_source"], 2 * smooth_map(sts001["t1"].shape), sts001["t1"].affine,
                             ExportSettings(), series_number=920)


def numbers() -> ReportNumbers:
    harm3 = AlgorithmInfo("harm3-demo", "1", "HARM3-Fusion", (("weights/fold0.safetensors", "ab" * 32),
                                                              ("weights/fold1.safetensors", "cd" * 32)))
    return ReportNumbers(
        pcr=PcrNumbers(probability=0.3738981977105141, spread=0.23349766613712733, algorithm=harm3, n_models=5,
                       missing_inputs=("t1_post", "t2_post", "slide")),
        survival=SurvivalNumbers(risk=-7.123456789012345, spread=0.0421, risk_group="high", risk_threshold=-7.5,
                                 algorithm=AlgorithmInfo("crossfusion-demo", "2", "CrossFusion"), n_models=5),
        tumours=(TumourNumbers("t1_pre", "GTV_Mass", "pre", 364.75378681454424, 93.4334853974443,
                               mask_origin="RTSTRUCT"),
                 TumourNumbers("t1_post", "GTV_Mass", "post", 120.1, 61.25, -67.07, -34.45, "drawn",
                               "onto the reference frame through T1-post: t1_post.tfm (Euler3DTransform)")))


def test_structured_report_numbers_read_back_exactly(sts001, tmp_path):
    source = sts001["t1_source"]
    seg = build_segmentation(source, sts001["t1"].affine, segments_of(sts001["t1_mask"]), ExportSettings(), 910)
    evidence = list(source.datasets) + list(sts001["t2_source"].datasets)
    sr = build_structured_report(numbers(), evidence, ExportSettings(), 900, segmentations={"t1_pre": seg})
    path = save_dataset(sr, tmp_path / "SR.dcm")
    warnings = assert_valid(path)
    assert read_report_numbers(path) == numbers()
    assert referenced_segments(path) == {"GTV_Mass t1_pre": (str(seg.SOPInstanceUID), 1)}
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == source.study_uid and ds.Modality == "SR"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert any(i.CodingSchemeDesignator == "99HARM3" for i in ds.CodingSchemeIdentificationSequence)
    evidence_uids = {str(i.ReferencedSOPInstanceUID) for s in ds.CurrentRequestedProcedureEvidenceSequence
                     for series in s.ReferencedSeriesSequence for i in series.ReferencedSOPSequence}
    assert {str(d.SOPInstanceUID) for d in evidence} | {str(seg.SOPInstanceUID)} <= evidence_uids
    library = [c for c in ds.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "111028"][0]
    frames = {str(i.UID) for group in library.ContentSequence for entry in group.ContentSequence
              for i in entry.get("ContentSequence", []) if i.ValueType == "UIDREF"}
    assert source.frame_of_reference_uid in frames
    assert all("99HARM3" in w for w in warnings if "defined term" in w)   # the private scheme, declared


def small_pdf() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1))
    figure.text(0.1, 0.5, "napari-harm3 report")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="pdf")
    return buffer.getvalue()


def test_encapsulated_pdf_round_trip(sts001, tmp_path):
    pdf = small_pdf()
    source = sts001["t1_source"]
    ds = build_encapsulated_pdf(pdf, source.datasets, ExportSettings(), series_number=901)
    path = save_dataset(ds, tmp_path / "PDF.dcm")
    assert_valid(path)
    assert read_encapsulated_pdf(path) == pdf
    back = pydicom.dcmread(path)
    assert back.MIMETypeOfEncapsulatedDocument == "application/pdf" and back.Modality == "DOC"
    assert len(back.SourceInstanceSequence) == len(source.datasets) and back.StudyInstanceUID == source.study_uid
    with pytest.raises(Harm3Error, match="not a PDF"):
        build_encapsulated_pdf(b"hello", source.datasets, ExportSettings(), series_number=901)


def test_deidentified_objects_carry_the_pseudonym_only(sts001, tmp_path):
    settings = ExportSettings(pseudonym="case-0123456789ab")
    t1, source = sts001["t1"], sts001["t1_source"]
    seg = build_segmentation(source, t1.affine, segments_of(sts001["t1_mask"]), settings, 910)
    objects = {"SEG": seg,
               "PM": build_parametric_map(source, smooth_map(t1.shape), t1.affine, settings, 920),
               "SR": build_structured_report(numbers(), source.datasets, settings, 900, {"t1_pre": seg}),
               "PDF": build_encapsulated_pdf(small_pdf(), source.datasets, settings, 901)}
    study_date = str(source.first.StudyDate)
    for kind, ds in objects.items():
        path = save_dataset(ds, tmp_path / f"{kind}.dcm")
        assert_valid(path)
        raw = path.read_bytes()
        assert b"STS_001" not in raw and study_date.encode() not in raw, kind
        back = pydicom.dcmread(path, stop_before_pixels=True)
        assert back.PatientName == "case-0123456789ab" and back.PatientID == "case-0123456789ab"
        assert back.PatientIdentityRemoved == "YES" and not back.get("PatientBirthDate") and not back.get("StudyDate")
        assert back.StudyInstanceUID == source.study_uid        # still in the source study, still referencing it
    assert read_report_numbers(objects["SR"]) == numbers()


def test_sr_and_pdf_against_a_slide_only(shared_data, tmp_path):
    slide = read_source_instance(real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm"))
    rows = ReportNumbers(tumours=(TumourNumbers("t1_pre", "mask", "pre", 12.5, 30.25, mask_origin="NIfTI labels"),))
    sr = save_dataset(build_structured_report(rows, slide.datasets, ExportSettings(), 900), tmp_path / "SR.dcm")
    assert_valid(sr)
    assert read_report_numbers(sr) == rows and pydicom.dcmread(sr).StudyInstanceUID == slide.study_uid
    pdf = save_dataset(build_encapsulated_pdf(small_pdf(), slide.datasets, ExportSettings(), 901), tmp_path / "PDF.dcm")
    assert_valid(pdf)


def test_output_folder_is_written_at_once(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as scratch:
            (scratch / "SR.dcm").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []           # no target, no scratch left
    with atomic_folder(target) as scratch:
        (scratch / "SR.dcm").write_bytes(b"done")
    assert (target / "SR.dcm").read_bytes() == b"done"
    with pytest.raises(Harm3Error, match="--overwrite"):
        with atomic_folder(target):
            pass
    with atomic_folder(target, overwrite=True) as scratch:
        (scratch / "PDF.dcm").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["PDF.dcm"] and len(list(tmp_path.iterdir())) == 1


def test_segmentation_on_an_enhanced_multiframe_source(sts001, tmp_path, shared_data):
    """A source series held as one Enhanced MR file (highdicom's legacy conversion of the real T2):
    the SEG's frames reference the source's frames, and the masks read back unchanged."""
    import highdicom as hd

    files = [pydicom.dcmread(f) for f in sorted((real_file(shared_data, "mri/sts001_dicom") / "T2").iterdir())]
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(files, series_instance_uid=hd.UID(), series_number=99,
                                                       sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "enhanced").mkdir()
    enhanced.save_as(tmp_path / "enhanced" / "t2.dcm")
    source = read_source_series(tmp_path / "enhanced")
    assert len(source.datasets) == 1 and int(source.first.NumberOfFrames) == 40
    t2 = sts001["t2"]
    seg = build_segmentation(source, t2.affine, segments_of(sts001["t2_mask"]), ExportSettings(), 912)
    path = save_dataset(seg, tmp_path / "SEG.dcm")
    assert_valid(path)
    back = read_segmentation(path, t2.affine, t2.shape)
    assert all(np.array_equal(back[name], sts001["t2_mask"].data == value)
               for value, name in sts001["t2_mask"].label_names.items())
    reference = pydicom.dcmread(path).PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == enhanced.SOPInstanceUID and int(reference.ReferencedFrameNumber) >= 1


def test_a_broken_source_is_one_line_and_nothing_is_written(sts001, tmp_path):
    import copy

    from napari_harm3.core.io.dicom_export.case_objects import CaseObjects, SeriesObjects, write_case_objects
    from napari_harm3.core.io.dicom_export.common import SourceSeries

    headers = [copy.deepcopy(ds) for ds in sts001["t1_source"].datasets]
    del headers[0].PixelSpacing
    broken = SourceSeries(datasets=tuple(headers))
    objects = CaseObjects(series=(SeriesObjects("t1_pre", broken, sts001["t1"].affine,
                                                tuple(segments_of(sts001["t1_mask"]))),))
    with pytest.raises(Harm3Error, match="cannot write the segmentation of T1-pre: .*PixelSpacing") as error:
        write_case_objects(objects, tmp_path / "out", ExportSettings())
    assert "\n" not in str(error.value) and list(tmp_path.iterdir()) == []
