"""File ▸ Open resolves each kind of file to exactly one of our readers (none for a PNG): npe2
picks our readers by their narrow filename patterns, and their checkers decide by content
(returning None for foreign content, never raising). With the case panel docked, an MRI opened
through napari goes to the linked MRI grid, not to the slide canvas."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from conftest import real_file

KINDS = {  # shared-data path (or a made file) -> our reader that must take it
    "mri/sts001_nifti/t1.nii.gz": "get_mri_reader",
    "mri/sts001_nifti/t1_tumour_mask.nii.gz": "get_mask_reader",
    "mri/sts001_dicom/T1": "get_mri_reader",
    "mri/sts001_dicom/T1/1-05.dcm": "get_mri_reader",
    "mri/sts001_dicom": "get_mri_reader",
    "mri/sts001_dicom/T1_rtstruct": "get_mask_reader",
    "wsi/tcga-cr-7395-hnsc-jp2k.svs": "get_slide_reader",
    "wsi/hamamatsu-dapi.ndpi": "get_slide_reader",
    "wsi/cptac-brca-lowres-dicom.dcm": "get_slide_reader",
}


@pytest.fixture(scope="module")
def plugins():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    return pm


def our_claims(pm, path) -> tuple:
    """(our readers npe2 finds compatible by pattern, those whose checker takes the path)."""
    compatible = [r for r in pm.iter_compatible_readers([str(path)]) if r.plugin_name == "napari-harm3"]
    taking = []
    for reader in compatible:
        module, name = pm.get_command(reader.command).python_name.split(":")
        if getattr(importlib.import_module(module), name)(str(path)) is not None:
            taking.append(reader.command.split(".")[-1])
    return [r.command.split(".")[-1] for r in compatible], taking


def test_each_kind_of_file_resolves_to_exactly_one_of_our_readers(plugins, shared_data, tmp_path):
    from napari_harm3._qt.images import save_png
    from napari_harm3.core.synth.demo import demo_case

    for relative, expected in KINDS.items():
        compatible, taking = our_claims(plugins, real_file(shared_data, relative))
        assert taking == [expected], (relative, compatible, taking)
    assert our_claims(plugins, demo_case())[1] == ["get_case_reader"]

    png = tmp_path / "photo.png"
    save_png(np.full((8, 8, 3), 200, np.uint8), png)
    assert our_claims(plugins, png) == ([], [])  # napari's own reader opens it, no dialog with ours
    text = tmp_path / "notes.dcm"  # a foreign file with our extension: checkers decline it
    text.write_text("not DICOM")
    assert our_claims(plugins, text)[1] == []
    assert our_claims(plugins, tmp_path)[1] == []  # a folder without DICOM images


@pytest.mark.gui
def test_file_open_of_a_nifti_goes_to_the_linked_grid(make_napari_viewer, shared_data):
    from napari_harm3._qt.case_panel import CasePanel

    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    t2_folder = real_file(shared_data, "mri/sts001_dicom/T2")
    viewer = make_napari_viewer(show=True)
    panel = CasePanel(viewer)
    viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
    try:
        assert viewer.open(str(nifti), plugin="napari-harm3") == []
        assert len(viewer.layers) == 0  # not on the slide canvas
        volume = panel.grid.panels["t1_pre"].volume_layer
        assert volume is not None and volume.data.ndim == 3
        assert volume in panel.grid.layers("t1_pre")
        viewer.open(str(t2_folder), plugin="napari-harm3")  # the DICOM series named T2: its panel
        assert panel.grid.panels["t2_pre"].volume_layer is not None and len(viewer.layers) == 0
    finally:
        panel.close_viewers()
