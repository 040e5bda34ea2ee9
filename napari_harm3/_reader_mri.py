"""napari reader glue for MRI volumes and tumour masks (LayerData tuples, no Qt).

``get_mri_reader`` accepts NIfTI files, DICOM MR/CT/PT files and folders (one image layer per
series; a study folder whose sub-folders hold series gives all of them, with any RTSTRUCT
masks drawn on them); a NIfTI label volume named as a mask is left to the mask reader. With the
HARM3 case panel docked, File ▸ Open sends the volumes to its MRI grid (``_mri_routing``).
``get_mask_reader`` accepts NIfTI label volumes and RTSTRUCT files or
folders. Both return None for anything else and never raise; the reader functions they
return raise :class:`~napari_harm3.core.errors.InputFileError` on bad files, which napari
shows as a notification while the viewer keeps running.

Every layer carries the volume's affine (index -> world mm, LPS), so layers of one patient
line up whatever their grids.
"""

from __future__ import annotations

from pathlib import Path

from ._mri_routing import docked_case_panel, route_to_grid
from .core.errors import InputFileError
from .core.io.masks import LabelVolume, is_mask_path, looks_like_labels, read_mask, read_rtstruct
from .core.io.mri import Volume, is_mri_path, is_nifti_path, read_nifti, read_volume
from .core.mri.windowing import auto_window

#: sub-folders looked at when deciding whether a folder is a study of several series
MAX_SUBFOLDERS = 32


def _single_path(path) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path) if path is not None else None


def _is_study_folder(path: Path) -> bool:
    """A folder without DICOM images of its own whose sub-folders hold some."""
    subfolders = [d for d in sorted(path.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return any(is_mri_path(d) for d in subfolders[:MAX_SUBFOLDERS])


def get_mri_reader(path):
    """Reader for NIfTI / DICOM image files and folders, else None. Never raises."""
    try:
        path = _single_path(path)
        if path is None:
            return None
        candidate = Path(path)
        if is_nifti_path(path) and get_mask_reader(path) is not None:
            return None  # a label volume named as a mask: the mask reader's
        if is_mri_path(candidate):
            return read_mri
        if candidate.is_dir() and _is_study_folder(candidate):
            return read_mri
    except Exception:
        return None
    return None


def get_mask_reader(path):
    """Reader for NIfTI label volumes and RTSTRUCT files/folders, else None. Never raises."""
    try:
        path = _single_path(path)
        if path is None or not is_mask_path(path):
            return None
        if is_nifti_path(path) and not _nifti_holds_labels(Path(path)):
            return None  # an integer-typed image, e.g. a raw int16 MRI
        return read_mask_layers
    except Exception:
        return None


def _nifti_holds_labels(path: Path) -> bool:
    return looks_like_labels(read_nifti(path).data)


# ---------------------------------------------------------------- layer data


def volume_layer_data(volume: Volume) -> tuple:
    """An ``image`` LayerData tuple for ``volume``, windowed with :func:`auto_window`."""
    metadata = {
        **dict(volume.metadata),
        "volume_source": volume.source,
        "series_uid": volume.series_uid,
        "frame_of_reference_uid": volume.frame_of_reference_uid,
        "description": volume.description,
        "spacing": volume.spacing,
    }
    kwargs = {
        "name": volume.name,
        "affine": volume.affine,
        "metadata": metadata,
        "contrast_limits": list(auto_window(volume.data)),
        "colormap": "gray",
    }
    return volume.data, kwargs, "image"


def _label_colormap(labels: LabelVolume):
    colours = dict(labels.metadata.get("label_colors", {}))
    if not colours or len(set(colours.values())) != len(colours) or set(colours) != set(labels.label_names):
        return None  # RTSTRUCTs often give every ROI the same colour: keep napari's distinct ones
    colormap = {label: tuple(c / 255 for c in rgb) + (1.0,) for label, rgb in colours.items()}
    colormap[0] = (0.0, 0.0, 0.0, 0.0)
    colormap[None] = (0.0, 0.0, 0.0, 0.0)
    return colormap


def labels_layer_data(labels: LabelVolume) -> tuple:
    """A ``labels`` LayerData tuple for ``labels``; label names and mL volumes in metadata."""
    metadata = {
        **dict(labels.metadata),
        "label_names": dict(labels.label_names),
        "volume_source": labels.source,
        "series_uid": labels.series_uid,
        "frame_of_reference_uid": labels.frame_of_reference_uid,
        "spacing": labels.spacing,
    }
    kwargs = {"name": labels.name, "affine": labels.affine, "metadata": metadata}
    colormap = _label_colormap(labels)
    if colormap is not None:
        kwargs["colormap"] = colormap
    return labels.data, kwargs, "labels"


# ---------------------------------------------------------------- readers


def read_mri(path) -> list[tuple]:
    """npe2 reader: with the HARM3 case panel docked, the volumes go to its linked MRI grid
    (napari gets "nothing to add"); otherwise they are ordinary image layers."""
    layers = read_mri_layers(path)
    panel = docked_case_panel()
    return layers if panel is None else route_to_grid(panel, layers)


def read_mri_layers(path) -> list[tuple]:
    """Image layers for a NIfTI file, a DICOM file's series, or every image series of a folder."""
    path = Path(_single_path(path) or "")
    if not path.is_dir():
        return [volume_layer_data(read_volume(path))]
    from .core.io.dicom_series import list_dicom_series, read_series

    series = list_dicom_series(path, recursive=not is_mri_path(path))
    images = [s for s in series if s.kind == "volume"]
    if not images:
        raise InputFileError(path, "holds no MR/CT image series; choose the folder with the .dcm slices")
    volumes = [read_series(s) for s in images]
    return [volume_layer_data(v) for v in volumes] + _study_masks(series, volumes)


def _study_masks(series, volumes) -> list[tuple]:
    """Labels layers for the RTSTRUCTs among ``series`` whose image series is among ``volumes``,
    each drawn on its own image's grid."""
    from .core.io.masks import read_rtstruct_dataset, referenced_series_uids

    by_uid = {v.series_uid: v for v in volumes}
    layers = []
    for info in (s for s in series if s.kind == "rtstruct"):
        for file in info.files:
            refs = referenced_series_uids(read_rtstruct_dataset(Path(file)))
            reference = next((by_uid[u] for u in refs if u in by_uid), None)
            if reference is not None:
                layers.append(labels_layer_data(read_rtstruct(file, reference=reference)))
    return layers


def read_mask_layers(path) -> list[tuple]:
    """A labels layer for a NIfTI label volume or an RTSTRUCT file/folder."""
    path = Path(_single_path(path) or "")
    return [labels_layer_data(read_mask(path))]
