"""A pydicom pixel-decoder plugin for 12-bit JPEG Extended (Process 2 and 4, ``…1.2.4.51``).

pydicom's own plugins cannot decode 12-bit JPEG Extended without pylibjpeg-libjpeg, which is
GPL-3 (this project is BSD-3): its GDCM and Pillow plugins refuse 12-bit precision. imagecodecs
(BSD-3, already a dependency for slide tiles) wraps libjpeg-turbo 3, which decodes 8- and 12-bit
sequential JPEG; measured identical to DCMTK's own ``dcmdjpeg`` on the real STS_001 T1 series
compressed with ``dcmcjpeg +ee`` (every pixel of 40 slices).

:mod:`napari_harm3.core.io.dicom_pixels` registers this module with pydicom's
``JPEGExtended12Bit`` decoder under the label ``"imagecodecs"``; pydicom's plugin contract asks
for ``is_available(uid)``, ``DECODER_DEPENDENCIES`` and the frame function.
"""

from __future__ import annotations

import numpy as np
from pydicom import uid

DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("imagecodecs>=2024.1",)}


def is_available(transfer_syntax: str) -> bool:
    """True when imagecodecs with its libjpeg-turbo codec is importable (pydicom asks per UID)."""
    if transfer_syntax not in DECODER_DEPENDENCIES:
        return False
    try:
        import imagecodecs  # lazy: optional dependency, pydicom asks whether it is there
    except ImportError:
        return False
    return bool(getattr(imagecodecs, "JPEG8", None) and imagecodecs.JPEG8.available)


def decode_frame(src: bytes, runner) -> bytes:
    """One JPEG Extended frame → the bytes pydicom expects (grey-level only; unsigned only).

    Signed 12-bit lossy JPEG has no decoder here that was checked against a reference (DCMTK
    writes signed input unsigned with a rescale intercept), so it is refused rather than guessed.
    """
    import imagecodecs  # lazy: optional dependency (is_available checked it first)

    if runner.samples_per_pixel != 1:
        raise NotImplementedError("the imagecodecs plugin decodes grey-level JPEG Extended only")
    if runner.pixel_representation != 0:
        raise NotImplementedError("the imagecodecs plugin does not decode signed JPEG Extended")
    array = np.asarray(imagecodecs.jpeg8_decode(src))
    runner.set_option("bits_allocated", 8 if array.dtype.itemsize == 1 else 16)
    return array.tobytes()
