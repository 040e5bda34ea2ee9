"""napari reader for whole-slide images (glue: LayerData tuples, no Qt).

A slide becomes one multiscale RGB image layer whose data are the slide's lazy pyramid
(:meth:`Slide.pyramid`: each napari slice is one region read), with ``scale = (mpp, mpp)``
and ``units = ("µm", "µm")`` so the scale bar and measurements are physical. Without
microns per pixel in the metadata the layer stays in pixels, carries
``metadata["mpp_missing"] = True`` and napari shows a warning saying how to supply it;
nothing is guessed.

Which paths are claimed: files that :func:`is_slide_file` recognises by content, and files
with a scanner-only extension (.svs, .ndpi, .mrxs, …) even when damaged, so the user sees
*why* such a file cannot be opened instead of "no reader found". Generic extensions
(.tif, .dcm) are claimed only by content, leaving plain TIFFs and MRI DICOM to others.
"""

from __future__ import annotations

from pathlib import Path

from .core.io.wsi import MPP_HINT, Slide, is_slide_file, open_slide
from .core.io.wsi_sniff import VENDOR_SLIDE_SUFFIXES


def _claims(path) -> bool:
    try:
        path = Path(path)
        return path.suffix.lower() in VENDOR_SLIDE_SUFFIXES or is_slide_file(path)
    except Exception:  # noqa: BLE001 - a checker must never raise
        return False


def get_slide_reader(path):
    """The slide reader for a slide path (or a list of them); None for anything else."""
    try:
        paths = path if isinstance(path, (list, tuple)) else [path]
        if not paths or not all(isinstance(p, (str, Path)) and _claims(p) for p in paths):
            return None
        return read_slides
    except Exception:  # noqa: BLE001
        return None


def missing_mpp_message(slide: Slide) -> str:
    """What the user reads when a slide has no microns per pixel."""
    return (
        f"{slide.path.name}: no microns-per-pixel in the slide's metadata, so it is shown in "
        f"pixels and nothing physical is computed; {MPP_HINT} (e.g. 0.25 for 40×, 0.5 for 20×)."
    )


def slide_layer_data(slide: Slide) -> tuple:
    """(data, kwargs, "image") for a multiscale RGB layer of ``slide`` (no napari import)."""
    metadata = {
        "slide_path": str(slide.path),
        "backend": slide.backend,
        "mpp": slide.mpp,
        "mpp_source": slide.mpp_source,
        "objective_power": slide.objective_power,
        "level_dimensions": slide.level_dimensions,
        "associated_images": list(slide.associated_images),
    }
    if slide.mpp is not None:
        scale, units = (slide.mpp, slide.mpp), ("µm", "µm")
    else:
        scale, units = (1.0, 1.0), ("pixel", "pixel")
        metadata["mpp_missing"] = True
    kwargs = {
        "name": slide.path.stem,
        "rgb": True,
        "multiscale": True,
        "contrast_limits": (0, 255),
        # the base picture under every map: no depth test (with napari's "translucent" the slide
        # wrote depth at the maps' own z, and a refilled slide layer then hid them)
        "blending": "translucent_no_depth",
        "scale": scale,
        "units": units,
        "metadata": metadata,
    }
    return slide.pyramid(), kwargs, "image"


def read_slides(path) -> list[tuple]:
    """Open each slide and return its layer; warns (napari notification) when mpp is missing.

    Raises :class:`~napari_harm3.core.errors.InputFileError` for a bad file; napari shows
    the message and the viewer keeps running.
    """
    from napari.utils.notifications import show_warning

    paths = path if isinstance(path, (list, tuple)) else [path]
    slides: list[Slide] = []
    try:
        for one in paths:
            slides.append(open_slide(one))
    except BaseException:
        for slide in slides:  # the layers will not exist: release their files
            slide.close()
        raise
    for slide in slides:
        if slide.mpp is None:
            show_warning(missing_mpp_message(slide))
    return [slide_layer_data(slide) for slide in slides]
