"""Training config files (``--config FILE``): YAML or JSON, one mapping, parsed once at the edge."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import InputFileError


def read_config_file(path, sections=None) -> dict:
    """The mapping in ``path`` (YAML for .yaml/.yml, else JSON); ``sections``, when given, are
    the only top-level keys allowed. Bad files are one readable InputFileError."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "config file not found")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # json / yaml parse errors
        raise InputFileError(path, f"not a valid config file ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise InputFileError(path, "config must be a mapping of option: value")
    if sections is not None and set(data) - set(sections):
        raise InputFileError(path, f"config must be a mapping with sections {', '.join(sections)}")
    return data
