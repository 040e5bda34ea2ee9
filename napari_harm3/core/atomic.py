"""Atomic file writing: a reader never sees a half-written file under the final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import Harm3Error


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched. With
    ``overwrite=False`` an existing ``path`` is an error, never silently replaced.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise Harm3Error(f"{path} exists; pass --overwrite (or choose another name) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files (and a writer may recreate the file): give the final file
        # the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
