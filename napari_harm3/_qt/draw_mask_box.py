"""Draw a tumour mask in an MRI panel and measure it (the Case tab's "Draw a tumour mask" box).

*Draw on* adds an empty labels layer on the chosen panel's volume grid, in napari's paint mode
(left-drag paints label 1; the brush size is napari's ``[`` / ``]``); *Use drawn masks* gives every
drawn layer of the open case to the session (:meth:`CaseSession.set_drawn_mask`), which puts it
back on the volume's own voxels and measures it: the tumour response in the results, the report
and the DICOM segmentation then use it, its origin "drawn". A layer drawn on one case is never
given to another (the case it was drawn on travels with it).
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..core.errors import Harm3Error, user_message
from ..core.vocabulary import sequence_title
from .polygon_tool import add_labels

#: the metadata key marking a drawn layer, holding the case it was drawn on
DRAWN_KEY = "harm3_drawn_on"
BRUSH_SIZE = 6


class DrawMaskBox(QGroupBox):
    """Choose a panel, draw, then use the drawn masks."""

    def __init__(self, case_panel, parent=None):
        super().__init__("Draw a tumour mask", parent)
        self.setObjectName("harm3_draw_mask")
        self.case_panel = case_panel
        self.panel_choice = QComboBox()
        self.draw_button = QPushButton("Draw on")
        self.draw_button.setToolTip("an empty mask on that panel, in paint mode (left-drag paints)")
        self.use_button = QPushButton("Use drawn masks")
        self.use_button.setToolTip("measure the drawn masks: tumour response, report, DICOM segmentation")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.draw_button)
        row.addWidget(self.panel_choice, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.use_button)
        layout.addWidget(self.status)
        self.draw_button.clicked.connect(self.start_drawing)
        self.use_button.clicked.connect(self.use_drawn)
        case_panel.case_loaded.connect(self.refresh)
        self.refresh()

    @property
    def grid(self):
        return self.case_panel.grid

    @property
    def session(self):
        return self.case_panel.session

    def refresh(self, *_args) -> None:
        """The panels that hold a volume of the open case."""
        keys = [k for k, p in self.grid.panels.items() if p.volume_layer is not None]
        self.panel_choice.clear()
        for key in keys:
            self.panel_choice.addItem(sequence_title(key), key)
        self.draw_button.setEnabled(bool(keys))
        self.use_button.setEnabled(bool(keys))
        self.status.setText("")

    def start_drawing(self, key: str | None = None):
        """An empty labels layer on panel ``key``'s volume grid, selected, in paint mode."""
        key = key or self.panel_choice.currentData()
        panel = self.grid.panels.get(key) if key else None
        if panel is None or panel.volume_layer is None or self.session.ref is None:
            show_error("open a case with this MRI volume first")
            return None
        volume = panel.volume_layer
        layer = add_labels(panel.model.layers, np.zeros(volume.data.shape, np.int32), affine=volume.affine.affine_matrix,
                           name=f"drawn tumour ({sequence_title(key)})", units="mm",
                           metadata={DRAWN_KEY: self.session.ref, "harm3_panel": key})
        layer.selected_label = 1
        layer.brush_size = BRUSH_SIZE
        layer.mode = "paint"
        panel.model.layers.selection.active = layer
        self.status.setText(f"painting on {sequence_title(key)}: left-drag paints, then Use drawn masks")
        return layer

    def drawn_layers(self) -> dict:
        """{panel key: its newest drawn layer} of the open case."""
        out = {}
        for key, panel in self.grid.panels.items():
            for layer in panel.model.layers:
                if layer.metadata.get(DRAWN_KEY) == self.session.ref and self.session.ref is not None:
                    out[key] = layer
        return out

    def use_drawn(self) -> list:
        """Give the drawn masks to the session; returns the tumour sizes now measured on them."""
        layers = self.drawn_layers()
        if not layers:
            show_error("no mask drawn on this case: press Draw on a panel first")
            return []
        measured = []
        try:
            for key, layer in layers.items():
                response = self.session.set_drawn_mask(key, np.asarray(layer.data), layer.affine.affine_matrix,
                                                       case_ref=layer.metadata[DRAWN_KEY])
                measured += [s for s in response.sizes() if s.sequence == key]
        except Harm3Error as exc:
            show_error(user_message(exc, "viewer"))
            return measured
        text = "; ".join(f"{sequence_title(s.sequence)} {s.volume_ml:.2f} mL, {s.longest_axial_diameter_mm:.1f} mm"
                         for s in measured)
        self.status.setText(f"drawn masks measured: {text}")
        show_info(f"drawn masks measured: {text}")
        workflow = getattr(self.case_panel, "workflow", None)
        if workflow is not None:
            workflow.refresh_results()
        return measured


def install_draw_mask_box(case_panel) -> DrawMaskBox:
    """Put a :class:`DrawMaskBox` into the Case tab, under the mask legend when there is one."""
    box = DrawMaskBox(case_panel)
    layout = case_panel.case_tab.layout()
    legend = getattr(case_panel, "mask_legend", None)
    index = layout.indexOf(legend) if legend is not None else -1
    layout.insertWidget(index + 1 if index >= 0 else layout.count(), box)
    case_panel.draw_mask = box
    return box
