"""Errors meant for people: one readable line, no traceback needed.

Core code raises :class:`Harm3Error` (or a subclass) when input is bad. The command line
prints ``harm3: error: <message>`` and exits with status 2; the napari layer shows the
message as a notification and keeps the viewer running.
"""

from __future__ import annotations

import re

#: an absolute path into a slide-feature cache (``…/features/<encoder>/x20/h5_files/X.h5``)
_CACHE_PATH = re.compile(r"(?:[A-Za-z]:)?/[^\s:;,]*?/features/[^\s:;,]+")


class Harm3Error(Exception):
    """A problem the user can fix (bad file, missing value, wrong option)."""


class InputFileError(Harm3Error):
    """A file or folder that cannot be read as what it claims to be."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingMetadataError(Harm3Error):
    """Metadata needed for a correct result is absent (e.g. microns per pixel).

    The message says what is missing; ``hints`` says how to supply it, per audience
    (``"cli"``: an option, ``"viewer"``: a field), added by :func:`user_message`.
    """

    def __init__(self, message: str, hints: dict | None = None):
        super().__init__(message)
        self.hints = dict(hints or {})


#: how to give a slide its microns per pixel, said in each audience's words
MPP_HINTS = {"cli": "pass --mpp (e.g. --mpp 0.25 for a 40x scan, 0.5 for 20x)",
             "viewer": "enter its µm/px in the Case tab (e.g. 0.25 for a 40x scan, 0.5 for 20x) and press Set µm/px"}


class Cancelled(Exception):
    """Raised inside a long computation when the user cancelled it."""


def user_message(exc: BaseException, audience: str = "cli") -> str:
    """What a person reads: :func:`one_line` plus the hint for ``audience`` ("cli" or "viewer");
    the viewer's text never shows the cache's internal paths."""
    text = one_line(exc)
    hint = getattr(exc, "hints", {}).get(audience)
    if hint:
        text = f"{text.rstrip('.;, ')}; {hint}"
    if audience == "viewer":
        text = _CACHE_PATH.sub("the case's feature cache", text)
    return text


def one_line(exc: BaseException, limit: int = 600) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit``
    characters: what a notification, a status line or ``harm3: error:`` shows."""
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
