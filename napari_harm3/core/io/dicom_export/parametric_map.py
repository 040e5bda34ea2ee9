"""A HARM3-Fusion MRI class-activation map as a DICOM Parametric Map on its source series' geometry.

The map is what the model returns (``core/explain/gradcam.py``): float values in [0, 1] on the
voxels of the volume it explains. It is stored as 32-bit float pixels (no rescaling, so it reads
back exactly) with an identity real-world value mapping (unit: none, range 0–1) naming what it
is (DCM "Class activation" for HiResCAM, "Gradient-weighted class activation" for Grad-CAM), a
VOI window 0–1, and, frame by frame, the source image each frame lies on.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom

from ...errors import Harm3Error
from . import codes
from .common import ExportSettings, SourceSeries, finish, highdicom_affine, identity_copies, new_uid, on_grid

PARAMETRIC_MAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"


def _quantity(method: str):
    return codes.GRADIENT_CLASS_ACTIVATION if method.strip().lower().startswith("gradcam") else codes.CLASS_ACTIVATION


def build_parametric_map(source: SourceSeries, values, affine, settings: ExportSettings, series_number: int,
                         method: str = "hirescam, evidence both", title: str = "") -> hd.pm.ParametricMap:
    """A parametric map of ``values`` ((nz, ny, nx) in [0, 1] on ``source``'s grid given by
    ``affine``, ours); ``method`` is what the map shows (``PcrPrediction.gradcam_method``)."""
    values = np.asarray(values, dtype=np.float32)
    source.check_grid(affine, values.shape, f"the {title or 'class-activation'} map")
    if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
        raise Harm3Error(f"the {title or 'class-activation'} map must hold values in [0, 1]")
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="HARM3CAM", lut_explanation=f"HARM3-Fusion {method}"[:64], unit=codes.UNIT_NONE,
        value_range=(0.0, 1.0), slope=1.0, intercept=0.0, quantity_definition=_quantity(method))
    volume = hd.Volume(values, highdicom_affine(affine), coordinate_system="PATIENT",
                       frame_of_reference_uid=source.frame_of_reference_uid)
    description = f"HARM3-Fusion map {title}".strip()[:64]
    pm = hd.pm.ParametricMap(
        source_images=identity_copies(source.datasets, settings), pixel_array=volume,
        series_instance_uid=new_uid(), series_number=series_number, sop_instance_uid=new_uid(), instance_number=1,
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        series_description=description, content_label="HARM3CAM", content_description=description,
        **settings.equipment())
    # Laterality (type 2C in General Series) is unknown to us: present and empty, as PS3.3 allows
    pm.Laterality = ""
    return finish(pm, settings)


def read_parametric_map(path_or_dataset, affine, shape) -> np.ndarray:
    """The map's real-world values on the grid ``shape``/``affine`` (ours), float32."""
    ds = path_or_dataset if isinstance(path_or_dataset, pydicom.Dataset) else pydicom.dcmread(str(path_or_dataset))
    pm = hd.pm.ParametricMap.from_dataset(ds, copy=False)
    reference = hd.VolumeGeometry(highdicom_affine(affine), tuple(shape), coordinate_system="PATIENT",
                                  frame_of_reference_uid=str(ds.FrameOfReferenceUID))
    return np.asarray(on_grid(pm.get_volume(), reference).array, dtype=np.float32)
