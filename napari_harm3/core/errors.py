"""Errors meant for people: one readable line, no traceback needed.

Core code raises :class:`Harm3Error` (or a subclass) when input is bad. The command line
prints ``harm3: error: <message>`` and exits with status 2; the napari layer shows the
message as a notification and keeps the viewer running.
"""

from __future__ import annotations


class Harm3Error(Exception):
    """A problem the user can fix (bad file, missing value, wrong option)."""


class InputFileError(Harm3Error):
    """A file or folder that cannot be read as what it claims to be."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingMetadataError(Harm3Error):
    """Metadata needed for a correct result is absent (e.g. microns per pixel)."""


class Cancelled(Exception):
    """Raised inside a long computation when the user cancelled it."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit``
    characters: what a notification, a status line or ``harm3: error:`` shows."""
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
