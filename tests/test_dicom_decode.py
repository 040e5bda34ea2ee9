"""Compressed DICOM: the real STS_001 T1 and T2 series re-encoded by DCMTK, GDCM, pydicom's own
encoders and imagecodecs (HTJ2K) decode bit-exact (lossless syntaxes) or within the encoder's
stated error (lossy ones); the compressed MR files pydicom ships read like their original; a
syntax nothing decodes is refused in one line naming it and saying what to do.

The copies are made once per session in a temporary folder (never committed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import ROOT, real_file
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate

from napari_harm3.core.cli.info import describe
from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.dicom_pixels import DECODER_PREFERENCE, _plugins_for, undecodable_reason
from napari_harm3.core.io.dicom_series import list_dicom_series
from napari_harm3.core.io.mri import read_volume

def _tools_present(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages dcmtk / libgdcm-tools; scripts/setup.sh)")


def _per_file(source: Path, out: Path, command) -> None:
    out.mkdir(parents=True)
    for path in sorted(source.glob("*.dcm")):
        subprocess.run([*command, str(path), str(out / path.name)], check=True, capture_output=True)


def _with_pydicom(source: Path, out: Path, syntax, **options) -> None:
    out.mkdir(parents=True)
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.compress(syntax, generate_instance_uid=False, **options)
        ds.save_as(out / path.name, enforce_file_format=True)


def _with_htj2k(source: Path, out: Path, syntax, reversible: bool) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    out.mkdir(parents=True)
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        frame = imagecodecs.htj2k_encode(ds.pixel_array, reversible=reversible)
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(out / path.name, enforce_file_format=True)


def _to_8_bit(source: Path, out: Path) -> None:
    """An 8-bit copy (JPEG baseline takes 8-bit samples only)."""
    out.mkdir(parents=True)
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PixelData = np.clip(ds.pixel_array.astype(np.float64) * 255 / 1200, 0, 255).astype(np.uint8).tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        ds.save_as(out / path.name, enforce_file_format=True)


# name → (syntax the copy must carry, how to make it from a source folder)
LOSSLESS = {
    "dcmcjpeg-57": (uid.JPEGLossless, lambda s, o: _per_file(s, o, ["dcmcjpeg", "+el"])),
    "dcmcjpeg-70": (uid.JPEGLosslessSV1, lambda s, o: _per_file(s, o, ["dcmcjpeg", "+e1"])),
    "gdcmconv-70": (uid.JPEGLosslessSV1, lambda s, o: _per_file(s, o, ["gdcmconv", "--jpeg"])),
    "dcmcjpls-80": (uid.JPEGLSLossless, lambda s, o: _per_file(s, o, ["dcmcjpls", "+el"])),
    "gdcmconv-80": (uid.JPEGLSLossless, lambda s, o: _per_file(s, o, ["gdcmconv", "--jpegls"])),
    "pydicom-80": (uid.JPEGLSLossless, lambda s, o: _with_pydicom(s, o, uid.JPEGLSLossless)),
    "gdcmconv-90": (uid.JPEG2000Lossless, lambda s, o: _per_file(s, o, ["gdcmconv", "--j2k"])),
    "pydicom-90": (uid.JPEG2000Lossless, lambda s, o: _with_pydicom(s, o, uid.JPEG2000Lossless)),
    "imagecodecs-201": (uid.HTJ2KLossless, lambda s, o: _with_htj2k(s, o, uid.HTJ2KLossless, reversible=True)),
    "dcmcrle-rle": (uid.RLELossless, lambda s, o: _per_file(s, o, ["dcmcrle"])),
    "gdcmconv-rle": (uid.RLELossless, lambda s, o: _per_file(s, o, ["gdcmconv", "--rle"])),
    "pydicom-rle": (uid.RLELossless, lambda s, o: _with_pydicom(s, o, uid.RLELossless)),
    "dcmconv-deflate": (uid.DeflatedExplicitVRLittleEndian, lambda s, o: _per_file(s, o, ["dcmconv", "+td"])),
    "dcmconv-bigendian": (uid.ExplicitVRBigEndian, lambda s, o: _per_file(s, o, ["dcmconv", "+tb"])),
}


class Copies:
    """Compressed copies of the real series, each made on first use and kept for the session."""

    def __init__(self, root: Path, shared: Path):
        self.root, self.shared, self.made = root, shared, {}

    def source(self, series: str, n_slices: int | None = None) -> Path:
        folder = real_file(self.shared, f"mri/sts001_dicom/{series}")
        if n_slices is None:
            return folder
        return self.get(f"{series}-first{n_slices}", lambda s, o: _first_slices(folder, o, n_slices), None)

    def original(self, folder: Path):
        """The uncompressed source folder read once (the reference every copy must equal)."""
        key = ("original", str(folder))
        if key not in self.made:
            self.made[key] = read_volume(folder)
        return self.made[key]

    def get(self, name: str, make, source: Path | None) -> Path:
        if name not in self.made:
            out = self.root / name
            make(source, out)
            self.made[name] = out
        return self.made[name]


def _first_slices(folder: Path, out: Path, count: int) -> None:
    out.mkdir(parents=True)
    for path in sorted(folder.glob("*.dcm"))[:count]:
        (out / path.name).symlink_to(path)


@pytest.fixture(scope="session")
def copies(tmp_path_factory, shared_data) -> Copies:
    return Copies(tmp_path_factory.mktemp("dicom-copies"), shared_data)


def _tool_of(name: str) -> list[str]:
    tool = name.split("-")[0]
    return [tool] if tool in ("dcmcjpeg", "dcmcjpls", "dcmcrle", "dcmconv", "gdcmconv") else []


# What PACS send most (JPEG Lossless, JPEG-LS, JPEG 2000, RLE, deflate) on the whole T1 and T2
# (another matrix, 384²); every other encoder on 10 slices of T1 (the suite's time budget).
WHOLE = ("dcmcjpeg-57", "dcmcjpeg-70", "dcmcjpls-80", "gdcmconv-90", "dcmcrle-rle", "dcmconv-deflate")
CASES = [("T1", n, None if n in WHOLE else 10) for n in LOSSLESS] + [("T2", n, None) for n in ("dcmcjpeg-70", "dcmcjpls-80", "gdcmconv-90")]


@pytest.mark.parametrize(("series", "encoder", "n_slices"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_lossless_copies_decode_bit_exact(copies, series, encoder, n_slices):
    _tools_present(*_tool_of(encoder))
    syntax, make = LOSSLESS[encoder]
    source = copies.source(series, n_slices)
    folder = copies.get(f"{source.name}-{encoder}", make, source)
    assert pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    volume, original = read_volume(folder), copies.original(source)
    assert volume.data.dtype == original.data.dtype
    np.testing.assert_array_equal(volume.data, original.data)
    np.testing.assert_allclose(volume.affine, original.affine, atol=1e-6)
    assert volume.metadata["transfer_syntax_uid"] == syntax and not volume.metadata["lossy_compression"]
    assert syntax.name in volume.metadata["transfer_syntax"] and volume.metadata["n_frames"] == (n_slices or 40)


def _psnr(decoded, original, peak=4095.0) -> float:
    error = np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(peak**2 / error)


def _reference_decode(folder: Path, tool: str, out: Path) -> np.ndarray:
    """Decoded by the encoder's own toolkit (DCMTK's dcmdjpeg), as the independent reference;
    read back uncompressed, so in the volume's slice order."""
    _per_file(folder, out, [tool])
    return read_volume(out).data


def _openjph_decode(folder: Path, out: Path) -> np.ndarray:
    """HTJ2K frames decoded by OpenJPH (imagecodecs), the reference HTJ2K implementation."""
    imagecodecs = pytest.importorskip("imagecodecs")
    out.mkdir()
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PixelData = imagecodecs.htj2k_decode(pydicom.encaps.get_frame(ds.PixelData, 0)).astype(np.uint16).tobytes()
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        ds.save_as(out / path.name, enforce_file_format=True)
    return read_volume(out).data


def test_near_lossless_jpeg_ls_keeps_its_stated_error(copies):
    _tools_present("dcmcjpls")
    source = copies.source("T1", n_slices=10)
    original = copies.original(source).data.astype(np.int32)
    for name, make, near in (("dcmcjpls-81", lambda s, o: _per_file(s, o, ["dcmcjpls", "+en", "+md", "2"]), 2),
                             ("pydicom-81", lambda s, o: _with_pydicom(s, o, uid.JPEGLSNearLossless, jls_error=3), 3)):
        volume = read_volume(copies.get(f"T1-{name}", make, source))
        error = np.abs(volume.data.astype(np.int32) - original)
        assert 0 < error.max() <= near, name  # really lossy, and never beyond NEAR
        assert volume.metadata["lossy_compression"]


def test_jpeg_2000_and_htj2k_lossy_keep_their_stated_quality(copies, tmp_path):
    source = copies.source("T1", n_slices=10)
    original = copies.original(source).data
    j2k = read_volume(copies.get("T1-pydicom-91", lambda s, o: _with_pydicom(s, o, uid.JPEG2000, j2k_psnr=[60]), source))
    assert j2k.metadata["transfer_syntax_uid"] == uid.JPEG2000 and j2k.metadata["lossy_compression"]
    assert 59.5 <= _psnr(j2k.data, original) < 80  # the PSNR asked of the encoder, and really lossy
    htj2k_folder = copies.get("T1-imagecodecs-203", lambda s, o: _with_htj2k(s, o, uid.HTJ2K, reversible=False), source)
    htj2k = read_volume(htj2k_folder)
    # the irreversible wavelet's rounding: our decoder (OpenJPEG) against HTJ2K's reference (OpenJPH)
    reference = _openjph_decode(htj2k_folder, tmp_path / "openjph")
    assert np.abs(htj2k.data.astype(np.int32) - reference).max() <= 1
    assert 0 < np.abs(htj2k.data.astype(np.int32) - original).max() and _psnr(htj2k.data, original) > 70


def test_jpeg_baseline_and_12_bit_extended_match_dcmtks_decoder(copies, tmp_path):
    _tools_present("dcmcjpeg", "dcmdjpeg")
    source = copies.source("T1", n_slices=10)
    extended = copies.get("T1-dcmcjpeg-51", lambda s, o: _per_file(s, o, ["dcmcjpeg", "+ee"]), source)
    volume = read_volume(extended)  # 12-bit: decoded by the imagecodecs plugin (no GPL decoder)
    assert volume.metadata["transfer_syntax_uid"] == uid.JPEGExtended12Bit and volume.metadata["lossy_compression"]
    np.testing.assert_array_equal(volume.data, _reference_decode(extended, "dcmdjpeg", tmp_path / "51"))
    assert _psnr(volume.data, copies.original(source).data) > 45
    eight_bit = copies.get("T1-8bit", _to_8_bit, source)
    baseline = copies.get("T1-dcmcjpeg-50", lambda s, o: _per_file(s, o, ["dcmcjpeg", "+eb"]), eight_bit)
    volume = read_volume(baseline)
    assert volume.metadata["transfer_syntax_uid"] == uid.JPEGBaseline8Bit and volume.data.dtype == np.uint8
    np.testing.assert_array_equal(volume.data, _reference_decode(baseline, "dcmdjpeg", tmp_path / "50"))
    assert _psnr(volume.data, read_volume(eight_bit).data, peak=255) > 35


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm"])
def test_pydichoms_compressed_mr_files_read_like_their_original(name):
    original = read_volume(get_testdata_file("MR_small.dcm"))
    path = get_testdata_file(name)
    volume = read_volume(path)  # its folder holds the same instance in the other encodings
    np.testing.assert_array_equal(volume.data, original.data)
    np.testing.assert_allclose(volume.affine, original.affine)
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert volume.metadata["transfer_syntax_uid"] == syntax  # the file asked for, not a sibling copy


def test_each_syntax_decodes_with_the_chosen_decoder_first():
    """The decoders pyproject.toml installs are the ones the decision table puts first."""
    for syntax, preference in DECODER_PREFERENCE.items():
        assert _plugins_for(syntax)[0] == preference[0], syntax.name
        assert undecodable_reason(syntax) is None


def _jpeg_xl_file(folder: Path, shared_data) -> Path:
    """A real JPEG XL lossless frame of a T1 slice, under JPEG XL's transfer syntax (newer than
    pydicom 3.0: written as MPEG2, whose UID has the same length, then renamed in the meta)."""
    imagecodecs = pytest.importorskip("imagecodecs")
    ds = pydicom.dcmread(real_file(shared_data, "mri/sts001_dicom/T1/1-20.dcm"))
    ds.PixelData = encapsulate([imagecodecs.jpegxl_encode(ds.pixel_array, lossless=True)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
    folder.mkdir()
    path = folder / "jxl.dcm"
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    assert raw.count(b"1.2.840.10008.1.2.4.100") == 1
    path.write_bytes(raw.replace(b"1.2.840.10008.1.2.4.100", b"1.2.840.10008.1.2.4.110"))
    return path


def test_a_syntax_nothing_decodes_is_refused_in_one_line(tmp_path, shared_data):
    path = _jpeg_xl_file(tmp_path / "jxl", shared_data)
    with pytest.raises(InputFileError) as error:
        read_volume(path)
    message = str(error.value)
    assert "JPEG XL Lossless (1.2.840.10008.1.2.4.110) cannot be decoded" in message and "\n" not in message
    assert "convert" in message
    listing = "\n".join(describe(path.parent))  # the folder listing warns before anyone reads it
    assert "cannot be read here" in listing and "JPEG XL Lossless" in listing


def test_without_gdcm_jpeg_lossless_is_refused_with_what_to_install(copies):
    """A fresh process where python-gdcm is not importable (as on a machine without it)."""
    _tools_present("dcmcjpeg")
    folder = copies.get("T1-first2-dcmcjpeg-57", lambda s, o: _per_file(s, o, ["dcmcjpeg", "+el"]), copies.source("T1", 2))
    code = "import sys; sys.modules['gdcm'] = None\nfrom napari_harm3.core.cli.main import main\nsys.exit(main(['info', sys.argv[1]]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", code, str(next(folder.glob("*.dcm")))], capture_output=True, text=True, env=env)
    assert run.returncode == 2
    assert run.stderr.startswith("harm3: error: ") and run.stderr.count("\n") == 1
    assert "JPEG Lossless, Non-Hierarchical (Process 14) (1.2.840.10008.1.2.4.57)" in run.stderr
    assert "pip install python-gdcm" in run.stderr


def test_listing_and_info_name_the_transfer_syntax(copies):
    _tools_present("dcmcjpls")
    folder = copies.get("T1-dcmcjpls-80", LOSSLESS["dcmcjpls-80"][1], copies.source("T1"))
    (series,) = list_dicom_series(folder)
    assert series.transfer_syntax == "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)"
    assert "(JPEG-LS Lossless Image Compression)" in "\n".join(describe(folder))
    text = "\n".join(describe(next(folder.glob("*.dcm"))))
    assert "transfer syntax: JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)" in text
    assert "frames: 40 in 40 file(s)" in text and "DICOM window presets (centre/width):" in text
