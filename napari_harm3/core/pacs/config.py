"""The PACS configuration file: who we are, the one peer we talk to, how to retrieve, TLS, rules.

Where it is looked for (the first that exists wins):

1. ``--config FILE`` on the command line (or the ``path`` argument of :func:`load_pacs_config`);
2. the file named by the environment variable ``HARM3_PACS_CONFIG``;
3. ``$XDG_CONFIG_HOME/harm3/pacs.yaml`` (``~/.config/harm3/pacs.yaml``; ``.yml``/``.json`` too).

Format (YAML, or JSON with the same keys; paths relative to the file's folder)::

    ae_title: HARM3              # our AE title (1-16 characters)
    peer:                        # the PACS: the only host the PACS commands connect to
      ae_title: ORTHANC
      host: pacs.example.org
      port: 4242
    retrieve: get                # get (C-GET, default) or move (C-MOVE to our storage SCP)
    move_port: 11113             # retrieve: move — port our storage SCP listens on while a
    move_host: 0.0.0.0           #   retrieval runs (the PACS must know our AE at this port)
    timeout: 30                  # seconds: TCP connect, association, each DIMSE message
    tls:                         # optional: DICOM over TLS
      ca: ca.pem                 #   CA bundle that signs the peer's certificate (verified)
      cert: harm3.pem            #   our certificate and key (mutual TLS), optional
      key: harm3.key
      server_name: pacs.example.org   # optional, default: peer.host
    rules:                       # optional: series description → sequence, see rules.py
      t1_pre: ['(?<![a-z0-9])t1(?![0-9])(?!.*post)']
      t2_post: ['t2.*post', 'stir.*post']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Harm3Error, InputFileError
from ..train.config_file import read_config_file
from .rules import SeriesRules

CONFIG_ENV = "HARM3_PACS_CONFIG"
CONFIG_NAMES = ("pacs.yaml", "pacs.yml", "pacs.json")
RETRIEVE_METHODS = ("get", "move")
_TOP_KEYS = ("ae_title", "peer", "retrieve", "move_port", "move_host", "timeout", "tls", "rules")


@dataclass(frozen=True)
class Peer:
    """The remote application entity (the PACS)."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title} at {self.host}:{self.port}"


@dataclass(frozen=True)
class TlsFiles:
    """TLS material: the CA that signs the peer, and optionally our certificate and key."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class PacsConfig:
    """Parsed once at the edge; every PACS function takes one."""

    ae_title: str
    peer: Peer
    retrieve: str = "get"
    move_port: int | None = None
    move_host: str = "0.0.0.0"
    timeout: float = 30.0
    tls: TlsFiles | None = None
    rules: SeriesRules = field(default_factory=SeriesRules)
    source: Path | None = None
    #: let pynetdicom log patient identifiers (``--show-identifiers``); never set from the file
    log_identifiers: bool = False

    def where(self) -> str:
        return f"PACS {self.peer}"


def default_config_paths() -> list[Path]:
    """The files looked for when no ``--config`` is given, in order."""
    paths = []
    if os.environ.get(CONFIG_ENV):
        paths.append(Path(os.environ[CONFIG_ENV]).expanduser())
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "harm3"
    return paths + [base / name for name in CONFIG_NAMES]


def find_config(path=None) -> Path:
    """The config file to use (``path`` if given), or a Harm3Error saying where we looked."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputFileError(path, "PACS config file not found")
        return path
    candidates = default_config_paths()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise Harm3Error("no PACS config file; write one at " + candidates[-len(CONFIG_NAMES)].as_posix()
                     + f" (or set {CONFIG_ENV}, or pass --config FILE); its format is in README 'PACS'")


def check_ae_title(value, where: str) -> str:
    """A valid AE title (1-16 characters of printable ASCII, no backslash), stripped."""
    if not isinstance(value, str) or not value.strip():
        raise Harm3Error(f"{where}: expected an AE title (text), got {value!r}")
    text = value.strip()
    if len(text) > 16 or "\\" in text or not all(32 <= ord(c) < 127 for c in text):
        raise Harm3Error(f"{where}: {text!r} is not a valid AE title (1-16 printable ASCII characters, no backslash)")
    return text


def _port(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise Harm3Error(f"{where}: expected a TCP port (1-65535), got {value!r}")
    return value


def _file(root: Path, value, where: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Harm3Error(f"{where}: expected a file path, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise InputFileError(path, f"{where}: file not found")
    return path


def parse_pacs_config(data: dict, source: Path | None = None) -> PacsConfig:
    """A :class:`PacsConfig` from the mapping of a config file; one readable error per problem."""
    name = str(source) if source else "PACS config"

    def bad(field_name: str, reason: str) -> Harm3Error:
        return Harm3Error(f"{name}: {field_name}: {reason}")

    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise bad(str(unknown[0]), f"unknown key; known keys: {', '.join(_TOP_KEYS)}")
    peer = data.get("peer")
    if not isinstance(peer, dict):
        raise bad("peer", "expected a mapping with ae_title, host, port")
    for key in ("ae_title", "host", "port"):
        if key not in peer:
            raise bad(f"peer.{key}", "missing")
    host = peer["host"]
    if not isinstance(host, str) or not host.strip():
        raise bad("peer.host", f"expected a host name or address, got {host!r}")
    retrieve = str(data.get("retrieve", "get")).lower()
    if retrieve not in RETRIEVE_METHODS:
        raise bad("retrieve", f"expected one of {', '.join(RETRIEVE_METHODS)}, got {data.get('retrieve')!r}")
    move_port = data.get("move_port")
    move_port = None if move_port is None else _port(move_port, f"{name}: move_port")
    if retrieve == "move" and move_port is None:
        raise bad("move_port", "retrieve: move needs the port our storage SCP listens on")
    timeout = data.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise bad("timeout", f"expected a positive number of seconds, got {timeout!r}")
    root = source.parent if source else Path.cwd()
    tls = data.get("tls")
    if tls is not None:
        if not isinstance(tls, dict) or set(tls) - {"ca", "cert", "key", "server_name"}:
            raise bad("tls", "expected a mapping with ca, cert, key, server_name")
        tls = TlsFiles(ca=_file(root, tls.get("ca"), f"{name}: tls.ca"),
                       cert=_file(root, tls.get("cert"), f"{name}: tls.cert"),
                       key=_file(root, tls.get("key"), f"{name}: tls.key"),
                       server_name=tls.get("server_name"))
        if (tls.cert is None) != (tls.key is None):
            raise bad("tls", "cert and key go together")
    return PacsConfig(
        ae_title=check_ae_title(data.get("ae_title", "HARM3"), f"{name}: ae_title"),
        peer=Peer(check_ae_title(peer["ae_title"], f"{name}: peer.ae_title"), host.strip(),
                  _port(peer["port"], f"{name}: peer.port")),
        retrieve=retrieve, move_port=move_port, move_host=str(data.get("move_host", "0.0.0.0")),
        timeout=float(timeout), tls=tls,
        rules=SeriesRules.from_mapping(data.get("rules"), where=f"{name}: rules"),
        source=source,
    )


def load_pacs_config(path=None) -> PacsConfig:
    """Find (see the module docstring) and parse the PACS config file."""
    source = find_config(path)
    return parse_pacs_config(read_config_file(source), source=source.resolve())
