"""Decoding DICOM pixel data: which decoder runs for which transfer syntax, and the one line
that refuses a syntax nothing here can decode.

pydicom's pixel handlers do the decoding, with kept decoder packages (all BSD/MIT/Apache; the
GPL-3 pylibjpeg-libjpeg is deliberately not used). First choice per syntax, then fallbacks —
chosen by speed on the real STS_001 T1 series (512×512, 12-bit), every choice bit-exact
against the uncompressed original for the lossless syntaxes (figures: NOTES / commit message):

==============================  ====================================  ==========================
transfer syntax                 decoders, in order                    why this order
==============================  ====================================  ==========================
JPEG Baseline (.50)             Pillow, GDCM                          Pillow 1.0 vs GDCM 2.0 ms
JPEG Extended (.51)             imagecodecs (12-bit), Pillow, GDCM    only non-GPL 12-bit decoder
JPEG Lossless (.57, .70)        GDCM                                  only non-GPL plugin; exact
JPEG-LS (.80, .81)              pyjpegls (CharLS), GDCM               5.6 vs 8.4 ms
JPEG 2000 (.90, .91)            GDCM, pylibjpeg-openjpeg, Pillow      20 vs 31 ms
HTJ2K (.201, .202, .203)        pylibjpeg-openjpeg                    the only one
RLE (.5)                        pylibjpeg-rle, pydicom                0.7 vs 4.5 ms
Deflated explicit VR (.1.99)    pydicom (zlib, while reading)
==============================  ====================================  ==========================

Every decoder after the first is a fallback for a frame the first one refuses. Decoding holds
the GIL in all of them (measured: two threads are no faster than one), so slices are decoded
one after the other.
"""

from __future__ import annotations

import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder, iter_pixels, pixel_array

from ..errors import InputFileError, one_line

#: transfer syntax → pydicom decoding plugins to try, best first (see the module docstring)
DECODER_PREFERENCE: dict[str, tuple[str, ...]] = {
    uid.JPEGBaseline8Bit: ("pillow", "gdcm"),
    uid.JPEGExtended12Bit: ("imagecodecs", "pillow", "gdcm"),
    uid.JPEGLossless: ("gdcm",),
    uid.JPEGLosslessSV1: ("gdcm",),
    uid.JPEGLSLossless: ("pyjpegls", "gdcm"),
    uid.JPEGLSNearLossless: ("pyjpegls", "gdcm"),
    uid.JPEG2000Lossless: ("gdcm", "pylibjpeg", "pillow"),
    uid.JPEG2000: ("gdcm", "pylibjpeg", "pillow"),
    uid.HTJ2KLossless: ("pylibjpeg",),
    uid.HTJ2KLosslessRPCL: ("pylibjpeg",),
    uid.HTJ2K: ("pylibjpeg",),
    uid.RLELossless: ("pylibjpeg", "pydicom"),
}

#: what to ``pip install`` for a syntax when none of its decoders is present
INSTALL_HINT: dict[str, str] = {
    uid.JPEGBaseline8Bit: "pillow",
    uid.JPEGExtended12Bit: "imagecodecs",
    uid.JPEGLossless: "python-gdcm",
    uid.JPEGLosslessSV1: "python-gdcm",
    uid.JPEGLSLossless: "pyjpegls",
    uid.JPEGLSNearLossless: "pyjpegls",
    uid.JPEG2000Lossless: "python-gdcm",
    uid.JPEG2000: "python-gdcm",
    uid.HTJ2KLossless: "pylibjpeg pylibjpeg-openjpeg",
    uid.HTJ2KLosslessRPCL: "pylibjpeg pylibjpeg-openjpeg",
    uid.HTJ2K: "pylibjpeg pylibjpeg-openjpeg",
    uid.RLELossless: "pylibjpeg pylibjpeg-rle",
}

# syntaxes newer than pydicom 3.0's dictionary: named in the refusal all the same
_NEWER_SYNTAXES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}

_CONVERT_HINT = "or convert the files to uncompressed DICOM (gdcmconv --raw IN OUT, or dcmdjpeg/dcmdjpls/dcmdrle)"


def _register_imagecodecs() -> None:
    decoder = get_decoder(uid.JPEGExtended12Bit)
    if "imagecodecs" not in decoder.available_plugins and "imagecodecs" not in decoder.missing_dependencies:
        try:
            decoder.add_plugin("imagecodecs", ("napari_harm3.core.io.dicom_imagecodecs", "decode_frame"))
        except ValueError:  # registered meanwhile (pydicom raises for a repeated label)
            pass


_register_imagecodecs()


def transfer_syntax_of(ds) -> uid.UID:
    """The dataset's transfer syntax (Implicit VR Little Endian when its file meta has none)."""
    meta = getattr(ds, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    return uid.UID(str(value)) if value else uid.ImplicitVRLittleEndian


def syntax_name(syntax) -> str:
    """``"JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)"``."""
    text = str(syntax)
    name = uid.UID(text).name if text in uid.UID_dictionary else _NEWER_SYNTAXES.get(text, "unknown transfer syntax")
    return f"{name} ({text})"


def _is_native(syntax: str) -> bool:
    """Uncompressed pixel data (deflate and big endian included): pydicom reads it itself."""
    return syntax in uid.UID_dictionary and uid.UID(syntax).is_transfer_syntax and not uid.UID(syntax).is_compressed


def is_lossy(syntax) -> bool:
    """True for the syntaxes whose decoded pixels may differ from the original."""
    return str(syntax) in {uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLSNearLossless, uid.JPEG2000, uid.HTJ2K}


def _plugins_for(syntax: str) -> list[str]:
    """Available plugins in our order, then pydicom's others; ``[""]`` for native syntaxes."""
    if _is_native(syntax):
        return [""]
    try:
        decoder = get_decoder(uid.UID(syntax))
    except (NotImplementedError, ValueError):
        return []
    available = list(decoder.available_plugins)
    preferred = [p for p in DECODER_PREFERENCE.get(syntax, ()) if p in available]
    return preferred + [p for p in available if p not in preferred]


def undecodable_reason(syntax) -> str | None:
    """Why pixels of ``syntax`` cannot be decoded here (one line naming it and what to do), or
    None when some decoder is present. Costs nothing: no pixel is read."""
    syntax = str(syntax)
    if syntax in uid.UID_dictionary and not uid.UID(syntax).is_transfer_syntax:
        return f"its transfer syntax UID is {syntax_name(syntax)}, not a transfer syntax: the file meta is damaged"
    if _plugins_for(syntax):
        return None
    hint = INSTALL_HINT.get(syntax)
    if hint:
        return f"pixel data in {syntax_name(syntax)} cannot be decoded: install {hint} (pip install {hint}) {_CONVERT_HINT}"
    return (f"pixel data in {syntax_name(syntax)} cannot be decoded: pydicom has no decoder for it; ask the sender "
            "for another transfer syntax, or convert the files to uncompressed DICOM with a tool that reads it")


def decode_frames(ds, path, indices=None) -> np.ndarray:
    """Decoded frames of ``ds`` as an (n, rows, columns) array, raw stored values (no rescale).

    ``indices`` picks frames (0-based) of a multi-frame dataset; None decodes all of them.
    A syntax with no decoder, or a frame every decoder refuses, raises :class:`InputFileError`
    in one line naming the syntax.
    """
    syntax = transfer_syntax_of(ds)
    reason = undecodable_reason(syntax)
    if reason:
        raise InputFileError(path, reason)
    errors = []
    for plugin in _plugins_for(syntax):
        try:
            return _decode_with(ds, plugin, indices)
        except Exception as exc:  # noqa: BLE001 - each plugin's failure is collected, the last one reported
            errors.append(f"{plugin or 'pydicom'}: {one_line(exc, 120)}")
    raise InputFileError(path, f"pixel data in {syntax_name(syntax)} cannot be decoded ({'; '.join(errors)}); the file may be damaged")


def _decode_with(ds, plugin: str, indices) -> np.ndarray:
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    indices = list(range(n_frames)) if indices is None else [int(i) for i in indices]
    if n_frames == 1 or len(indices) * 2 > n_frames:  # most frames: one call, then pick
        array = pixel_array(ds, decoding_plugin=plugin).reshape((n_frames, -1) + (int(ds.Columns),))
        return array if indices == list(range(n_frames)) else array[indices]
    wanted = sorted(set(indices))  # pydicom yields the asked frames in file order
    decoded = dict(zip(wanted, iter_pixels(ds, indices=wanted, decoding_plugin=plugin)))
    return np.stack([decoded[i] for i in indices])
