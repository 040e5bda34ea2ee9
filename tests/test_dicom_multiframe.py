"""Enhanced / multi-frame MR: the real STS_001 series converted to Enhanced MR by highdicom's
legacy conversion read like the classic series; a file holding several stacks (T1 and T2 as
stacks 1 and 2 with their echo times, frames shuffled, Philips-style per-frame rescale; or two
orientations) splits into volumes the user can tell apart, listed, described and chosen by a
manifest's ``folder#UID:N``; compressed multi-frame files decode; inconsistent frames are one
readable line. A classic dual-echo series splits by echo the same way."""

from __future__ import annotations

import copy
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from conftest import real_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from napari_harm3.core.cli.info import describe
from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.case import load_case
from napari_harm3.core.io.dicom_frames import plane_name
from napari_harm3.core.io.dicom_series import list_dicom_series, parse_series_selector
from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.case_volumes import read_case_volumes

highdicom = pytest.importorskip("highdicom")
from highdicom.legacy import LegacyConvertedEnhancedMRImage  # noqa: E402

T1_TE, T2_TE = 12.0, 80.0
# highdicom's note that the anonymised PatientName "STS_001" has a single component
pytestmark = pytest.mark.filterwarnings("ignore:The string .* intended person name:UserWarning")


def _classic(shared_data, series: str, count: int | None = None) -> list[Dataset]:
    files = sorted(real_file(shared_data, f"mri/sts001_dicom/{series}").glob("*.dcm"))
    return [pydicom.dcmread(f) for f in files[:count]]


def _enhanced(datasets) -> Dataset:
    """highdicom's legacy conversion of classic slices into one Legacy Converted Enhanced MR."""
    return LegacyConvertedEnhancedMRImage(
        datasets, series_instance_uid=generate_uid(), series_number=100, sop_instance_uid=generate_uid(), instance_number=1
    )


def _save(ds: Dataset, folder, name="enhanced.dcm"):
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / name, enforce_file_format=True)
    return folder / name


def _padded(datasets, size: int) -> list[Dataset]:
    """Slices zero-padded at the right and bottom to size×size (same first voxel and spacing)."""
    out = []
    for ds in datasets:
        ds = copy.deepcopy(ds)
        pixels = np.zeros((size, size), ds.pixel_array.dtype)
        pixels[: ds.Rows, : ds.Columns] = ds.pixel_array
        ds.Rows = ds.Columns = size
        ds.PixelData = pixels.tobytes()
        out.append(ds)
    return out


def _dimension(pointer: int, label: str) -> Dataset:
    item = Dataset()
    item.DimensionOrganizationUID = "1.2.826.0.1.3680043.8.498.1"
    item.DimensionIndexPointer = pointer
    item.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    item.DimensionDescriptionLabel = label
    return item


def _merge_stacks(parts, seed: int = 0) -> Dataset:
    """One Enhanced MR file from several (enhanced dataset, StackID, TE ms, slope, intercept,
    transpose[, TemporalPositionIndex]) parts: geometry moved per frame, MR Echo and Pixel Value
    Transformation per frame, Frame Content StackID / InStackPositionNumber / temporal index /
    DimensionIndexValues, frames shuffled."""
    frames = []
    for ds, stack_id, echo_ms, slope, intercept, transpose, *temporal in parts:
        shared = ds.SharedFunctionalGroupsSequence[0]
        raw = ds.pixel_array
        for n, source in enumerate(ds.PerFrameFunctionalGroupsSequence):
            item = copy.deepcopy(source)
            item.PixelMeasuresSequence = copy.deepcopy(shared.PixelMeasuresSequence)
            item.PlaneOrientationSequence = copy.deepcopy(shared.PlaneOrientationSequence)
            pixels = raw[n]
            if transpose:  # rows ↔ columns: the same anatomy in another orientation
                o = [float(v) for v in item.PlaneOrientationSequence[0].ImageOrientationPatient]
                item.PlaneOrientationSequence[0].ImageOrientationPatient = o[3:] + o[:3]
                pixels = pixels.T
            transformation = Dataset()
            transformation.RescaleSlope, transformation.RescaleIntercept, transformation.RescaleType = slope, intercept, "US"
            item.PixelValueTransformationSequence = [transformation]
            if echo_ms is not None:
                echo = Dataset()
                echo.EffectiveEchoTime = echo_ms
                item.MREchoSequence = [echo]
            content = item.FrameContentSequence[0]
            if stack_id is not None:
                content.StackID = stack_id
                content.DimensionIndexValues = [int(stack_id), n + 1]
            else:
                del content.StackID
                content.DimensionIndexValues = [n + 1]
            content.InStackPositionNumber = n + 1
            if temporal:
                content.TemporalPositionIndex = temporal[0]
            frames.append((item, np.ascontiguousarray(pixels)))
    order = np.random.default_rng(seed).permutation(len(frames))
    merged = copy.deepcopy(parts[0][0])
    merged.PerFrameFunctionalGroupsSequence = [frames[i][0] for i in order]
    shared = merged.SharedFunctionalGroupsSequence[0]
    for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence", "PixelValueTransformationSequence"):
        delattr(shared, keyword)
    with_stacks = parts[0][1] is not None
    merged.DimensionIndexSequence = ([_dimension(0x00209056, "Stack ID")] if with_stacks else []) + [
        _dimension(0x00209057, "In-Stack Position Number")]
    merged.NumberOfFrames = len(frames)
    merged.PixelData = np.stack([frames[i][1] for i in order]).tobytes()
    merged.SeriesInstanceUID = generate_uid()
    merged.SOPInstanceUID = merged.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return merged


@pytest.fixture(scope="module")
def classic(shared_data):
    return {name: read_volume(real_file(shared_data, f"mri/sts001_dicom/{name}")) for name in ("T1", "T2")}


@pytest.fixture(scope="module")
def enhanced_t1(shared_data, tmp_path_factory):
    return _save(_enhanced(_classic(shared_data, "T1")), tmp_path_factory.mktemp("enhanced-t1"))


@pytest.fixture(scope="module")
def two_stacks(shared_data, tmp_path_factory):
    """T1 (stack 1, TE 12 ms) and T2 zero-padded to 512² (stack 2, TE 80 ms, slope 2, intercept -10)."""
    t1 = _enhanced(_classic(shared_data, "T1"))
    t2 = _enhanced(_padded(_classic(shared_data, "T2"), 512))
    merged = _merge_stacks([(t1, "1", T1_TE, 1.0, 0.0, False), (t2, "2", T2_TE, 2.0, -10.0, False)])
    return _save(merged, tmp_path_factory.mktemp("two-stacks"))


def test_enhanced_conversion_reads_like_the_classic_series(enhanced_t1, classic):
    volume, reference = read_volume(enhanced_t1.parent), classic["T1"]
    np.testing.assert_array_equal(volume.data, reference.data)
    assert volume.data.dtype == reference.data.dtype
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-6)
    meta = volume.metadata
    assert meta["multiframe"] and meta["n_frames"] == 40 and meta["n_files"] == 1 and meta["n_stacks"] == 1
    assert meta["sop_class"] == "Legacy Converted Enhanced MR Image Storage"
    # the per-frame Frame VOI LUT windows are the classic slices' own windows
    assert {(w["center"], w["width"]) for w in meta["window_presets"]} == {
        (w["center"], w["width"]) for w in reference.metadata["window_presets"]}
    assert meta["window_presets"][0] == reference.metadata["window_presets"][0]
    np.testing.assert_allclose(read_volume(enhanced_t1).affine, reference.affine, atol=1e-6)  # the file itself too
    text = "\n".join(describe(enhanced_t1))
    assert "frames: 40 in 1 file(s), multi-frame (Legacy Converted Enhanced MR Image Storage)" in text


@pytest.mark.parametrize("command", [["dcmcjpls", "+el"], ["gdcmconv", "--jpeg"]], ids=["jpeg-ls", "jpeg-lossless"])
def test_compressed_enhanced_file_decodes_bit_exact(enhanced_t1, classic, tmp_path, command):
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed (dcmtk / libgdcm-tools)")
    (tmp_path / "c").mkdir()
    subprocess.run([*command, str(enhanced_t1), str(tmp_path / "c" / "x.dcm")], check=True, capture_output=True)
    volume = read_volume(tmp_path / "c")
    assert volume.metadata["transfer_syntax_uid"] != "1.2.840.10008.1.2" and volume.metadata["multiframe"]
    np.testing.assert_array_equal(volume.data, classic["T1"].data)
    np.testing.assert_allclose(volume.affine, classic["T1"].affine, atol=1e-6)


def test_a_file_with_two_stacks_splits_into_volumes_told_apart(two_stacks, classic, tmp_path):
    folder = two_stacks.parent
    listed = list_dicom_series(folder)
    assert [(s.stack, s.n_stacks, s.n_frames, s.stack_label) for s in listed] == [
        (1, 2, 40, "stack 1, echo 1 (TE 12 ms)"), (2, 2, 40, "stack 2, echo 2 (TE 80 ms)")]
    assert listed[1].description.endswith("— stack 2, echo 2 (TE 80 ms)")
    uid = listed[0].uid
    assert [s.selector for s in listed] == [f"{uid}:1", f"{uid}:2"]

    t1 = read_volume(folder, series_uid=f"{uid}:1")
    np.testing.assert_array_equal(t1.data, classic["T1"].data)  # frames were shuffled: sorted back
    np.testing.assert_allclose(t1.affine, classic["T1"].affine, atol=1e-6)
    t2 = read_volume(folder, series_uid=f"{uid}:2")
    expected = np.zeros((40, 512, 512), np.float32)
    expected[:, :384, :384] = classic["T2"].data
    np.testing.assert_array_equal(t2.data, expected * 2 - 10)  # its own per-frame rescale
    np.testing.assert_allclose(t2.affine, classic["T2"].affine, atol=1e-6)
    assert t2.metadata["echo_time"] == T2_TE and t2.metadata["stack"] == 2 and t2.name != t1.name
    np.testing.assert_array_equal(read_volume(two_stacks, series_uid=":2").data, t2.data)  # file#:2

    with pytest.raises(InputFileError) as error:
        read_volume(folder)
    message = str(error.value)
    assert "\n" not in message and f"#{uid}:N" in message
    assert ":1 = stack 1, echo 1 (TE 12 ms)" in message and ":2 = stack 2, echo 2 (TE 80 ms)" in message
    with pytest.raises(InputFileError, match="has no volume 3"):
        read_volume(folder, series_uid=f"{uid}:3")

    file_text, folder_text = "\n".join(describe(two_stacks)), "\n".join(describe(folder))
    assert "DICOM file with 2 volumes (stacks)" in file_text and f"select: {two_stacks}#:2" in file_text
    assert "40 × 512 × 512" in file_text and "volume 2 — stack 2, echo 2 (TE 80 ms)" in file_text
    assert "folder with 1 DICOM series (2 volumes)" in folder_text and f"volume 2 of 2 (select: .#{uid}:2)" in folder_text

    manifest = tmp_path / "case" / "case.yaml"
    manifest.parent.mkdir()
    manifest.write_text(f"case_id: MF\nmri:\n  t1_pre: '{folder}#{uid}:1'\n  t2_pre: '{folder}#{uid}:2'\n")
    volumes = read_case_volumes(load_case(manifest), with_masks=False).volumes
    np.testing.assert_array_equal(volumes["t1_pre"].data, t1.data)
    np.testing.assert_array_equal(volumes["t2_pre"].data, t2.data)


def test_two_orientations_in_one_file_are_two_volumes(shared_data, tmp_path):
    """No StackID, no echo: the orientation alone tells the stacks apart. The transposed stack's
    normal (row × column) points the other way, so its slices come in reverse order; every voxel
    lies at the same world point as in the original."""
    t1 = _enhanced(_classic(shared_data, "T1", 8))
    path = _save(_merge_stacks([(t1, None, None, 1.0, 0.0, False), (t1, None, None, 1.0, 0.0, True)]), tmp_path / "o")
    listed = list_dicom_series(path.parent)
    assert [s.stack_label for s in listed] == ["axial 1", "axial 2"]
    first, second = (read_volume(path, series_uid=f":{n}") for n in (1, 2))
    np.testing.assert_array_equal(second.data, first.data[::-1].transpose(0, 2, 1))
    k, j, i = (a.ravel() for a in np.meshgrid([0, 2, 7], [0, 100, 511], [3, 400], indexing="ij"))
    np.testing.assert_allclose(second.index_to_world(np.stack([7 - k, i, j], 1)),
                               first.index_to_world(np.stack([k, j, i], 1)), atol=1e-6)
    assert plane_name([1, 0, 0, 0, 0, -1]) == "coronal" and plane_name([0, 1, 0, 0, 0, -1]) == "sagittal"


def test_temporal_positions_in_one_file_are_two_volumes(shared_data, tmp_path):
    """A dynamic acquisition: the same stack at two TemporalPositionIndex values."""
    t1 = _enhanced(_classic(shared_data, "T1", 4))
    later = copy.deepcopy(t1)
    later.PixelData = (t1.pixel_array // 3).astype(np.uint16).tobytes()
    path = _save(_merge_stacks([(t1, None, None, 1.0, 0.0, False, 1), (later, None, None, 1.0, 0.0, False, 2)]), tmp_path / "t")
    assert [s.stack_label for s in list_dicom_series(path.parent)] == ["time point 1", "time point 2"]
    first, second = (read_volume(path, series_uid=f":{n}") for n in (1, 2))
    np.testing.assert_array_equal(second.data, first.data // 3)
    np.testing.assert_allclose(second.affine, first.affine)


def test_other_dimension_indices_split_only_frames_at_one_place(shared_data, tmp_path):
    """A Philips-style private "image type" dimension (magnitude/phase at one place) splits; an
    acquisition counter that numbers the slices does not."""
    t1 = _enhanced(_classic(shared_data, "T1", 4))
    other = copy.deepcopy(t1)
    other.PixelData = (t1.pixel_array // 2).astype(np.uint16).tobytes()
    merged = _merge_stacks([(t1, None, None, 1.0, 0.0, False, 1), (other, None, None, 1.0, 0.0, False, 2)])
    merged.DimensionIndexSequence = [_dimension(0x00200012, "Acquisition Number"), _dimension(0x20051011, "Image Type")]
    for item in merged.PerFrameFunctionalGroupsSequence:
        content = item.FrameContentSequence[0]
        content.DimensionIndexValues = [int(content.InStackPositionNumber), int(content.TemporalPositionIndex)]
        del content.TemporalPositionIndex
    path = _save(merged, tmp_path / "d")
    assert [(s.stack_label, s.n_frames) for s in list_dicom_series(path.parent)] == [("Image Type 1", 4), ("Image Type 2", 4)]
    np.testing.assert_array_equal(read_volume(path, series_uid=":2").data, read_volume(path, series_uid=":1").data // 2)


def _frame_item(ds, number):
    return ds.PerFrameFunctionalGroupsSequence[number - 1]


def _broken(ds, change) -> Dataset:
    ds = copy.deepcopy(ds)
    shared = ds.SharedFunctionalGroupsSequence[0]
    for item in ds.PerFrameFunctionalGroupsSequence:  # per-frame pixel measures, as Philips writes
        item.PixelMeasuresSequence = copy.deepcopy(shared.PixelMeasuresSequence)
    del shared.PixelMeasuresSequence
    change(ds)
    return ds


def test_inconsistent_frames_are_one_readable_line(shared_data, tmp_path):
    base = _enhanced(_classic(shared_data, "T1", 6))

    def spacing(ds):
        _frame_item(ds, 4).PixelMeasuresSequence[0].PixelSpacing = [0.5, 0.5]

    def no_position(ds):
        del _frame_item(ds, 3).PlanePositionSequence

    def same_position(ds):
        _frame_item(ds, 2).PlanePositionSequence = copy.deepcopy(_frame_item(ds, 1).PlanePositionSequence)

    def missing_frame(ds):
        _frame_item(ds, 3).PlanePositionSequence = copy.deepcopy(_frame_item(ds, 2).PlanePositionSequence)
        position = [float(v) for v in _frame_item(ds, 3).PlanePositionSequence[0].ImagePositionPatient]
        step = np.subtract([float(v) for v in _frame_item(ds, 2).PlanePositionSequence[0].ImagePositionPatient],
                           [float(v) for v in _frame_item(ds, 1).PlanePositionSequence[0].ImagePositionPatient])
        _frame_item(ds, 3).PlanePositionSequence[0].ImagePositionPatient = list(np.add(position, 1.5 * step))

    cases = [(spacing, "frames with different pixel spacing (frame 4 of enhanced.dcm); not one volume"),
             (no_position, "frame 3 of enhanced.dcm lacks ImagePositionPatient (Plane Position)"),
             (same_position, "several slices share one position"),
             (missing_frame, "uneven slice spacing")]
    for n, (change, expected) in enumerate(cases):
        path = _save(_broken(base, change), tmp_path / f"case{n}")
        with pytest.raises(InputFileError) as error:
            read_volume(path.parent)
        assert expected in str(error.value) and "\n" not in str(error.value), change.__name__
    # classic slices of one series, one of them of another matrix size
    for ds in _classic(shared_data, "T1", 5):
        if ds.InstanceNumber == 3:
            ds.PixelData = np.ascontiguousarray(ds.pixel_array[::2, ::2]).tobytes()
            ds.Rows, ds.Columns = 256, 256
        ds.save_as(tmp_path / f"s{ds.InstanceNumber:02d}.dcm", enforce_file_format=True)
    with pytest.raises(InputFileError, match=r"frames of different sizes \(512×512 and 256×256 in s03.dcm\)"):
        read_volume(tmp_path / "s01.dcm")


def test_a_classic_dual_echo_series_splits_by_echo(shared_data, tmp_path):
    series_uid = generate_uid()
    for echo, (te, scale) in enumerate(((T1_TE, 1), (T2_TE, 2)), start=1):
        for ds in _classic(shared_data, "T1", 5):
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.EchoTime, ds.EchoNumbers = te, echo
            ds.PixelData = (ds.pixel_array // scale).astype(np.uint16).tobytes()
            ds.save_as(tmp_path / f"e{echo}-{ds.InstanceNumber:02d}.dcm", enforce_file_format=True)
    listed = list_dicom_series(tmp_path)
    assert [(s.stack_label, s.n_files) for s in listed] == [("echo 1 (TE 12 ms)", 5), ("echo 2 (TE 80 ms)", 5)]
    first, second = read_volume(tmp_path, series_uid=":1"), read_volume(tmp_path / "e2-03.dcm")  # the file's own echo
    np.testing.assert_array_equal(second.data, first.data // 2)
    np.testing.assert_allclose(second.affine, first.affine)
    with pytest.raises(InputFileError, match="holds 2 volumes"):
        read_volume(tmp_path)


def test_series_selector_parsing():
    assert parse_series_selector("1.2.3") == ("1.2.3", None)
    assert parse_series_selector("1.2.3:2") == ("1.2.3", 2)
    assert parse_series_selector(":3") == (None, 3)
    assert parse_series_selector(None) == (None, None) == parse_series_selector("")
    for bad in ("1.2.3:x", "1.2.3:0", ":"):
        with pytest.raises(ValueError, match="volume number"):
            parse_series_selector(bad)


def test_the_napari_reader_opens_each_volume_of_a_multi_stack_file(two_stacks):
    """File ▸ Open on one file holding two stacks: two image layers, each on its own geometry."""
    from napari_harm3._reader_mri import read_mri_layers

    from pathlib import Path

    layers = read_mri_layers(str(Path(two_stacks).parent))
    assert len(layers) == 2
    assert not np.allclose(layers[0][1]["affine"], layers[1][1]["affine"])  # 0.39 vs 0.52 mm pixels
