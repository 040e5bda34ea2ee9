"""CLAM file layout: names, round trips, reading CLAM-made files, the core API and the CLI."""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import pytest
import torch

from conftest import real_file
from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.wsi.feature_files import (SlideFiles, load_clam_features, mag_dir_name, read_patch_file,
                                                 write_feature_files, write_patch_file)
from napari_harm3.core.wsi.patching import patch_slide, write_patches
from napari_harm3.core.wsi.prepare import EmptyBagWarning, load_feature_bag, prepare_slide_features
from napari_harm3.core.wsi.tissue import TissueParams

CLAM_ATTRS = {"patch_size", "patch_level", "downsample", "downsampled_level_dim", "level_dim", "name"}


def test_layout_names(tmp_path):
    assert mag_dir_name(20) == "x20" and mag_dir_name(20, 224) == "x20_p224" and mag_dir_name(None) == "xnative"
    files = SlideFiles.of(tmp_path, "resnet50_trunc", 5, 256, "case01")
    assert files.pt == tmp_path / "resnet50_trunc" / "x5" / "pt_files" / "case01.pt"
    assert files.patches == tmp_path / "resnet50_trunc" / "x5" / "patches" / "case01.h5"
    assert files.h5 == tmp_path / "resnet50_trunc" / "x5" / "h5_files" / "case01.h5"


def test_patch_file_has_clams_attributes(shared_data, tmp_path):
    path = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    patches = patch_slide(path, 20, 256, TissueParams.from_preset("tcga"), mpp=0.25)
    out = write_patches(patches, tmp_path / "x20" / "patches" / "tcga.h5", save_mask=True)
    coords, attrs = read_patch_file(out)
    assert np.array_equal(coords, patches.coords) and coords.dtype == np.int64
    assert CLAM_ATTRS <= set(attrs)
    assert attrs["patch_level"] == 1 and attrs["patch_size"] == 256 and attrs["patch_size_level0"] == 512
    assert attrs["name"] == "tcga-cr-7395-hnsc-jp2k" and attrs["level_dim"] == [2221, 1783]
    assert attrs["magnification"] == 20.0 and attrs["magnification_source"] == "mpp given by the user"
    assert (tmp_path / "x20" / "masks" / "tcga_mask.png").is_file() is False  # named after the slide
    assert (tmp_path / "x20" / "masks" / "tcga-cr-7395-hnsc-jp2k_mask.png").is_file()


def test_feature_round_trip_h5_and_pt(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 5)).astype(np.float32)
    coords = rng.integers(0, 10_000, (7, 2))
    files = SlideFiles.of(tmp_path, "enc", 10, 256, "s1")
    write_patch_file(files.patches, coords, {"patch_size": 256, "patch_level": 0, "name": "s1"})
    write_feature_files(files, features, coords, {"encoder": "enc", "weights_sha256": "ab" * 32})
    f_h5, c_h5, attrs = load_clam_features(files.h5)
    f_pt, c_pt, _ = load_clam_features(files.pt)
    assert np.array_equal(f_h5, features) and np.array_equal(f_pt, features)
    assert np.array_equal(c_h5, coords) and np.array_equal(c_pt, coords)
    assert attrs["weights_sha256"] == "ab" * 32
    with pytest.raises(Harm3Error, match="exists"):
        write_patch_file(files.patches, coords, {}, overwrite=False)


def test_reads_files_written_the_way_clam_writes_them(tmp_path):
    """CLAM's extract_features_fp: h5 with 'features' and 'coords' datasets, pt = torch.save(tensor)."""
    features = torch.randn(4, 1024)
    coords = np.array([[0, 0], [0, 256], [256, 0], [256, 256]])
    (tmp_path / "h5_files").mkdir()
    (tmp_path / "pt_files").mkdir()
    (tmp_path / "patches").mkdir()
    with h5py.File(tmp_path / "h5_files" / "slide.h5", "w") as f:
        f.create_dataset("features", data=features.numpy())
        f.create_dataset("coords", data=coords)
    torch.save(features, tmp_path / "pt_files" / "slide.pt")
    with h5py.File(tmp_path / "patches" / "slide.h5", "w") as f:
        dset = f.create_dataset("coords", data=coords)
        dset.attrs.update(patch_size=256, patch_level=0, downsample=[1.0, 1.0], downsampled_level_dim=[4096, 4096],
                          level_dim=[4096, 4096], name="slide")
    for path in (tmp_path / "h5_files" / "slide.h5", tmp_path / "pt_files" / "slide.pt"):
        f, c, _ = load_clam_features(path)
        assert np.allclose(f, features.numpy()) and np.array_equal(c, coords)


def test_bad_feature_files_are_clear_errors(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("features", data=np.zeros((3, 2), np.float32))
        f.create_dataset("coords", data=np.zeros((2, 2), np.int64))
    with pytest.raises(InputFileError, match="3 feature rows but 2"):
        load_clam_features(tmp_path / "x.h5")
    (tmp_path / "junk.h5").write_text("no")
    with pytest.raises(InputFileError, match="HDF5"):
        load_clam_features(tmp_path / "junk.h5")
    torch.save(torch.zeros(2, 3), tmp_path / "lonely.pt")
    with pytest.raises(InputFileError, match="patch file not found"):
        load_clam_features(tmp_path / "lonely.pt")


def test_prepare_slide_features_caches_and_loads(shared_data, tmp_path):
    path = real_file(shared_data, "wsi/hamamatsu-dapi.ndpi")
    bags = prepare_slide_features(path, tmp_path, "texture_stats", mags=(5, 10), batch_size=16)
    assert set(bags) == {5, 10}
    bag = bags[10]
    assert bag.features.dtype == np.float32 and bag.features.shape[1] == 42 and len(bag) == len(bag.coords) > 0
    assert bag.patch_size_level0 == 1122 and bag.encoder == "texture_stats" and bag.mag == 10
    h5 = SlideFiles.of(tmp_path, "texture_stats", 10, 256, "hamamatsu-dapi").h5
    mtime = h5.stat().st_mtime_ns
    again = prepare_slide_features(path, tmp_path, "texture_stats", mags=(10,))
    assert h5.stat().st_mtime_ns == mtime and np.array_equal(again[10].features, bag.features)
    loaded = load_feature_bag(tmp_path, "texture_stats", "hamamatsu-dapi", 10)
    assert np.array_equal(loaded.coords, bag.coords) and loaded.attrs["magnification"] == 10.0


def _cli(*argv):
    from napari_harm3.core.cli import extract, patch

    parser = argparse.ArgumentParser(prog="harm3")
    sub = parser.add_subparsers()
    patch.register(sub)
    extract.register(sub)
    args = parser.parse_args([str(a) for a in argv])
    return args.handler(args)


def test_cli_patch_then_extract(shared_data, tmp_path):
    svs = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    from napari_harm3.core.errors import user_message

    with pytest.raises(Harm3Error, match="neither microns per pixel nor objective power") as info:
        _cli("patch", svs, "--out", tmp_path / "p")
    assert "pass --mpp" in user_message(info.value, "cli")
    assert "Case tab" in user_message(info.value, "viewer") and "--mpp" not in user_message(info.value, "viewer")
    assert _cli("patch", svs, "--out", tmp_path / "p", "--mpp", "0.25", "--mag", "5", "--contour", "corner_any",
                "--a-t", "1") == 0
    coords, attrs = read_patch_file(tmp_path / "p" / "x5" / "patches" / "tcga-cr-7395-hnsc-jp2k.h5")
    assert attrs["contour_fn"] == "corner_any" and '"a_t": 1.0' in attrs["tissue_params"]
    assert _cli("extract", svs, "--patches", tmp_path / "p", "--out", tmp_path / "f", "--encoder", "texture_stats",
                "--mags", "5", "--mpp", "0.25", "--a-t", "1", "--contour", "corner_any", "--workers", "1") == 0
    features, stored, _ = load_clam_features(tmp_path / "f" / "texture_stats" / "x5" / "pt_files" / "tcga-cr-7395-hnsc-jp2k.pt")
    assert np.array_equal(stored, coords) and features.shape == (len(coords), 42)


def test_a_slide_without_tissue_gives_empty_bags_and_says_so(tmp_path, capsys):
    """No tissue patch at a magnification: the files hold an empty bag (downstream code leaves
    the slide out), and a warning names the slide and the magnification."""
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff
    from napari_harm3.core.train.bags import empty_magnifications

    blank = write_pyramidal_tiff(tmp_path / "blank.tif", np.full((1024, 1024, 3), 240, np.uint8), mpp=0.5,
                                 objective_power=20, tile_size=256)
    with pytest.warns(EmptyBagWarning) as record:
        bags = prepare_slide_features(blank, tmp_path / "f", "texture_stats", mags=(5, 10, 20))
    assert [str(w.message) for w in record if w.category is EmptyBagWarning] == [
        f"blank: no tissue patch at {mag}x; its feature files hold an empty bag (0 patches)" for mag in (5, 10, 20)]
    assert all(bag.features.shape == (0, 42) and len(bag.coords) == 0 for bag in bags.values())
    assert empty_magnifications(tmp_path / "f", "texture_stats", "blank") == [5, 10, 20]
    capsys.readouterr()
    assert _cli("extract", blank, "--patches", tmp_path / "p", "--out", tmp_path / "g", "--encoder", "texture_stats",
                "--mags", "10,20", "--workers", "1") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harm3: warning:")]
    assert lines == [f"harm3: warning: blank: no tissue patch at {mag}x; its feature files hold an empty bag "
                     "(0 patches)" for mag in (10, 20)]
    features, coords, _ = load_clam_features(tmp_path / "g" / "texture_stats" / "x10" / "h5_files" / "blank.h5")
    assert features.shape == (0, 42) and len(coords) == 0


def test_slides_sharing_a_file_name_never_share_features(tmp_path):
    """Synthetic cases all call their slide biopsy.tiff: reusing one case's features for
    another must be an error, and a slide_id per case keeps them apart."""
    from napari_harm3.core.errors import Harm3Error
    from napari_harm3.core.synth import make_case

    first = make_case(tmp_path / "A", seed=1)
    second = make_case(tmp_path / "B", seed=2)
    root = tmp_path / "features"
    prepare_slide_features(first.slide, root, "texture_stats", mags=(10,))
    with pytest.raises(Harm3Error, match="another slide"):
        prepare_slide_features(second.slide, root, "texture_stats", mags=(10,))
    a = prepare_slide_features(first.slide, root, "texture_stats", mags=(10,), slide_id="A")[10]
    b = prepare_slide_features(second.slide, root, "texture_stats", mags=(10,), slide_id="B")[10]
    assert a.slide == "A" and b.slide == "B" and len(a) > 0 and len(b) > 0
    assert not np.array_equal(a.features.mean(0), b.features.mean(0))
