"""npe2 reader entry points (napari glue, no Qt).

Each ``get_*_reader(path)`` returns a reader function for paths it recognises and ``None``
for foreign paths; it never raises. The real work is in ``napari_harm3.core.io``; the
per-kind glue modules turn core objects into napari LayerData tuples.
"""

from __future__ import annotations


def get_mri_reader(path):
    from ._reader_mri import get_mri_reader as impl

    return impl(path)


def get_mask_reader(path):
    from ._reader_mri import get_mask_reader as impl

    return impl(path)


def get_slide_reader(path):
    from ._reader_wsi import get_slide_reader as impl

    return impl(path)


def get_case_reader(path):
    from ._reader_case import get_case_reader as impl

    return impl(path)
