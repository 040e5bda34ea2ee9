"""The tumour-mask legend in the Case tab: each label value with its name and the colour the
MRI panels paint it with (the clinicians' RTSTRUCT contours of the real STS_001 T1 series)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import real_file

pytestmark = pytest.mark.gui


def test_mask_labels_get_a_legend_with_names_and_colours(make_napari_viewer, qtbot, shared_data):
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.mask_legend import install_mask_legend

    t1 = real_file(shared_data, "mri/sts001_dicom/T1")
    rtstruct = real_file(shared_data, "mri/sts001_dicom/T1_rtstruct")
    viewer = make_napari_viewer(show=True)
    panel = CasePanel(viewer)
    legend = install_mask_legend(panel)
    viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
    try:
        assert legend.text.text() == "no mask" and legend.isVisibleTo(panel)
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.open_files({"t1_pre": str(t1), "mask": str(rtstruct)}, case_id="STS_001")
        mask = next(l for l in panel.grid.layers("t1_pre") if l._type_string == "labels")
        names = {e.name: e for e in legend.entries}
        assert {"GTV_Mass", "GTV_Edema"} <= set(names), names
        for entry in legend.entries:
            assert entry.panel == "t1_pre" and entry.layer == mask.name
            assert mask.metadata["label_names"][entry.value] == entry.name
            np.testing.assert_allclose(entry.rgba, mask.get_color(entry.value))  # what the panel paints
            assert entry.rgba[3] > 0 and entry.hex in legend.text.text() and entry.name in legend.text.text()
        assert names["GTV_Mass"].hex != names["GTV_Edema"].hex  # two structures, two colours
        assert (np.asarray(mask.data) == names["GTV_Mass"].value).any()
    finally:
        panel.close_viewers()
