"""The tumour-mask legend: which label value is which structure, in which colour.

:class:`MaskLegend` lists, for every labels layer in the linked MRI grid, each label value
with its name (from the mask's ``label_names``: RTSTRUCT ROI names, or "label N") and a swatch
of the colour napari paints it with (``Labels.get_color``), so the legend and the panels cannot
disagree. It sits in the case panel's Case tab, under the case's details, and is rebuilt when a
case is shown (:func:`install_mask_legend`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qtpy.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from ..core.vocabulary import sequence_title


@dataclass(frozen=True)
class LegendEntry:
    panel: str          # grid panel key ("t1_pre", …)
    layer: str          # the labels layer's name
    value: int          # label value in the mask
    name: str           # what the value stands for
    rgba: tuple         # napari's colour for it (0..1)

    @property
    def hex(self) -> str:
        r, g, b = (int(round(255 * c)) for c in self.rgba[:3])
        return f"#{r:02x}{g:02x}{b:02x}"


def label_values(layer) -> list:
    """The non-zero label values of a labels layer: its named ones, else those present in its data."""
    names = dict(layer.metadata.get("label_names") or {})
    if names:
        return sorted(int(v) for v in names)
    return [int(v) for v in np.unique(np.asarray(layer.data)) if v != 0]


def legend_entries(grid) -> list:
    """A :class:`LegendEntry` per label value of every labels layer in ``grid``'s panels."""
    entries = []
    for key in grid.panels:
        for layer in grid.layers(key):
            if layer.__class__.__name__ != "Labels":
                continue
            names = {int(k): str(v) for k, v in dict(layer.metadata.get("label_names") or {}).items()}
            for value in label_values(layer):
                colour = layer.get_color(value)
                rgba = tuple(float(c) for c in (colour if colour is not None else (0, 0, 0, 0)))
                entries.append(LegendEntry(key, layer.name, value, names.get(value, f"label {value}"), rgba))
    return entries


class MaskLegend(QGroupBox):
    """"Tumour masks": one line per label value — swatch, value, name, panel."""

    def __init__(self, grid, parent=None):
        super().__init__("Tumour masks", parent)
        self.setObjectName("harm3_mask_legend")
        self.grid = grid
        self.entries: list = []
        self.text = QLabel("no mask")
        self.text.setObjectName("harm3_mask_legend_text")
        self.text.setWordWrap(True)
        QVBoxLayout(self).addWidget(self.text)

    def refresh(self, *_args) -> list:
        """Rebuild from the grid's labels layers; returns the entries shown."""
        self.entries = legend_entries(self.grid)
        if not self.entries:
            self.text.setText("no mask")
            return self.entries
        rows = [f'<span style="color:{e.hex}">■</span> {e.value}: {e.name} '
                f'<span style="color:gray">({sequence_title(e.panel)}, {e.layer})</span>' for e in self.entries]
        self.text.setText("<br>".join(rows))
        return self.entries

    def plain_text(self) -> str:
        return "\n".join(f"{e.value}: {e.name} ({sequence_title(e.panel)}) {e.hex}" for e in self.entries)


def install_mask_legend(case_panel) -> MaskLegend:
    """Put a :class:`MaskLegend` into ``case_panel``'s Case tab (after the case's details) and
    rebuild it whenever a case is shown."""
    legend = MaskLegend(case_panel.grid)
    layout = case_panel.case_tab.layout()
    details = case_panel.case_id_label.parentWidget()
    index = layout.indexOf(details)
    layout.insertWidget(index + 1 if index >= 0 else layout.count(), legend)
    case_panel.case_loaded.connect(legend.refresh)
    case_panel.mask_legend = legend
    return legend
