"""A tumour mask the user painted in the viewer, as a mask of the volume it was drawn on.

The MRI panels show a volume on a display grid (its own voxels, flipped or transposed to lie
along the patient's axes, or resliced onto T1-pre's grid: :mod:`.reslice`), so a labels layer
painted there lives on that grid. :func:`drawn_mask` puts the painted labels back on the
volume's own voxels (nearest neighbour: exact for a flip or transpose), so the tumour response,
the report and the DICOM segmentation treat a drawn mask as they treat one read from a file.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import Harm3Error
from ..io.masks import LabelVolume
from ..io.mri import Volume

#: what a drawn mask's origin reads in the tumour response, the report and the SR
DRAWN = "drawn"


def drawn_mask(labels, grid_affine, volume: Volume, name: str = "tumour (drawn)") -> LabelVolume:
    """``labels`` (z, y, x) painted on the grid ``grid_affine`` (index → world mm, the frame the
    case's volumes are in) as a :class:`LabelVolume` on ``volume``'s voxels."""
    labels = np.asarray(labels)
    grid_affine = np.asarray(grid_affine, dtype=float)
    if labels.ndim != 3 or grid_affine.shape != (4, 4):
        raise Harm3Error(f"a drawn mask must be a 3-D labels array with a 4×4 affine (got {labels.shape}, {grid_affine.shape})")
    if not np.any(labels):
        raise Harm3Error("the drawn mask is empty: paint the tumour first")
    if labels.min() < 0:
        raise Harm3Error("a drawn mask holds label values of 0 or more")
    target = np.asarray(volume.affine, dtype=float)
    if labels.shape == volume.shape and np.allclose(grid_affine, target, atol=1e-6):
        data = labels.astype(np.uint16, copy=True)
    else:
        index_to_index = np.linalg.solve(grid_affine, target)  # volume index → drawn-grid index
        data = ndimage.affine_transform(labels.astype(np.uint16), index_to_index[:3, :3], offset=index_to_index[:3, 3],
                                        output_shape=volume.shape, order=0, mode="constant", cval=0)
        if not np.any(data):
            raise Harm3Error("the drawn mask does not overlap its volume")
    names = {int(v): ("tumour" if v == 1 else f"label {int(v)}") for v in np.unique(data) if v}
    return LabelVolume(data=data, affine=target.copy(), name=name, source="drawn in the viewer",
                       description=f"drawn on {volume.name}", series_uid=volume.series_uid,
                       frame_of_reference_uid=volume.frame_of_reference_uid,
                       metadata={"origin": DRAWN}, label_names=names)
