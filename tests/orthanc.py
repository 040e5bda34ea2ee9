"""A real PACS for the tests: Orthanc (Debian's ``orthanc`` package) on 127.0.0.1.

Loaded as a pytest plugin by the PACS test modules (``pytest_plugins = ("orthanc",)``), so the
session-scoped server starts once for all of them. :class:`OrthancServer` writes its own JSON
configuration — free DICOM and HTTP ports, storage and index in a temporary folder, our AE title
registered in ``DicomModalities`` (so C-GET and C-MOVE to our storage SCP are allowed), no remote
access, no plugins — starts ``Orthanc`` and stops it after. The fixture uploads the real STS_001
T1/T2 series and their RTSTRUCTs plus one synthetic case written as DICOM, by our own C-STORE
(``napari_harm3.core.pacs.store``). Without Orthanc the tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
ORTHANC_AET = "ORTHANCTEST"
OUR_AET = "HARM3TEST"
STS001_SERIES = ("T1", "T2", "T1_rtstruct", "T2_rtstruct")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when the test process dies, so an interrupted
    session leaves no Orthanc behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class OrthancServer:
    """One Orthanc process with its configuration and storage under ``folder``."""

    def __init__(self, folder: Path, our_port: int, tls: dict | None = None):
        self.folder = Path(folder)
        self.dicom_port, self.http_port, self.our_port = free_port(), free_port(), our_port
        self.process: subprocess.Popen | None = None
        # DCMTK (Orthanc's DICOM layer) leaves Nagle's algorithm on unless TCP_NODELAY=1: each small
        # object then waits ~40 ms for our delayed ACK before its last segment is sent
        self.environment = {"TCP_NODELAY": "1"}
        config = {
            "Name": "harm3-tests", "DicomAet": ORTHANC_AET, "DicomPort": self.dicom_port,
            "HttpPort": self.http_port, "HttpServerEnabled": True, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"), "Plugins": [], "SaveJobs": False,
            "DicomCheckCalledAet": True, "DicomCheckModalityHost": False, "StorageCompression": False,
            "DicomModalities": {"harm3": {"AET": OUR_AET, "Host": "127.0.0.1", "Port": our_port,
                                          "UseDicomTls": bool(tls)}},
            "DicomScpTimeout": 30, "DeidentifyLogs": True, "ConcurrentJobs": 1,
        }
        if tls:
            config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": tls["cert"],
                           "DicomTlsPrivateKey": tls["key"], "DicomTlsTrustedCertificates": tls["ca"],
                           "DicomTlsRemoteCertificateRequired": True})
        self.config_path = self.folder / "orthanc.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=1))
        self.log_path = self.folder / "orthanc.log"

    def start(self, timeout: float = 30.0) -> "OrthancServer":
        log = open(self.log_path, "wb")
        env = {**os.environ, **self.environment}
        self.process = subprocess.Popen([ORTHANC, str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.folder, env=env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with status {self.process.returncode}: {self.log_tail()}")
            try:
                self.rest("/system")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, n: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 1.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds: its storage is a temporary folder, and a
        clean shutdown takes Orthanc ~2.5 s (jobs engine, DICOM threads) for nothing here."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def rest(self, path: str, body: dict | None = None):
        """Orthanc's REST API (the test's independent view of what the PACS holds)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                         method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def find_instances(self, level: str, **query) -> list:
        return self.rest("/tools/find", {"Level": level, "Query": query, "Expand": True})

    def config_dict(self, **overrides) -> dict:
        """A harm3 PACS config mapping pointing at this server."""
        data = {"ae_title": OUR_AET, "peer": {"ae_title": ORTHANC_AET, "host": "127.0.0.1", "port": self.dicom_port},
                "retrieve": "get", "move_port": self.our_port, "move_host": "127.0.0.1", "timeout": 20}
        data.update(overrides)
        return data


def make_certificates(folder: Path) -> dict:
    """A test CA, a certificate for 127.0.0.1 (Orthanc's) and one for us, all signed by the CA,
    and a second, unrelated CA (openssl command line; skips without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make test certificates")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=harm3 test {ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    for name in ("orthanc", "harm3"):
        (folder / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return {key: str(folder / value) for key, value in
            {"ca": "ca.pem", "other_ca": "other-ca.pem", "orthanc_cert": "orthanc.pem", "orthanc_key": "orthanc.key",
             "cert": "harm3.pem", "key": "harm3.key"}.items()}


@pytest.fixture(scope="session")
def start_orthanc(tmp_path_factory):
    """Factory: ``start_orthanc(tls=None)`` → a started OrthancServer (stopped at the session's end)."""
    if ORTHANC is None:
        pytest.skip("Orthanc is not installed (Debian package 'orthanc'; scripts/setup.sh installs it)")
    started = []

    def start(tls: dict | None = None) -> OrthancServer:
        server = OrthancServer(tmp_path_factory.mktemp("orthanc-extra"), our_port=free_port(), tls=tls)
        try:
            server.start()
        except (RuntimeError, OSError) as exc:
            pytest.skip(f"Orthanc cannot be started here: {exc}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass(frozen=True)
class PacsFixture:
    """The session's Orthanc, what it holds and how to reach it."""

    server: OrthancServer
    synth_study_uid: str
    synth_case_dir: Path      # the synthetic case (manifest pointing at its DICOM folders)
    synth_patient_id: str

    def config(self, **overrides):
        from napari_harm3.core.pacs.config import parse_pacs_config

        return parse_pacs_config(self.server.config_dict(**overrides))

    def config_file(self, folder: Path, **overrides) -> Path:
        path = Path(folder) / "pacs.json"
        path.write_text(json.dumps(self.server.config_dict(**overrides)))
        return path

    def upload(self, *folders: Path) -> None:
        upload(self.config(), *folders)


def upload(pacs_config, *folders: Path) -> None:
    """C-STORE folders with our own code, one association per folder, in parallel: Orthanc 1.10
    spends ~90 ms between one C-STORE response and reading the next request of an association
    (its own polling; it stores an object in ~4 ms), so parallel associations cut that wait."""
    from concurrent.futures import ThreadPoolExecutor

    from napari_harm3.core.pacs.store import send_folder

    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(lambda folder: send_folder(pacs_config, folder), folders):
            assert not result.failed, result.failed[:3]


def study_uid_of(folder: Path) -> str:
    import pydicom

    first = next(p for p in sorted(Path(folder).rglob("*")) if p.is_file())
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)


@pytest.fixture(scope="session")
def pacs(tmp_path_factory) -> PacsFixture:
    """Orthanc on 127.0.0.1 holding one synthetic case written as DICOM (a study of four series)."""
    if ORTHANC is None:
        pytest.skip("Orthanc is not installed (Debian package 'orthanc'; scripts/setup.sh installs it)")
    from napari_harm3.core.io.dicom_write import write_case_dicom
    from napari_harm3.core.synth.cohort import make_case

    root = tmp_path_factory.mktemp("orthanc")
    server = OrthancServer(root / "server", our_port=free_port())
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"Orthanc cannot be started here: {exc}")
    try:
        case = write_case_dicom(make_case(root / "synth" / "SYN-PACS", seed=11, slide_size=(512, 512),
                                          case_id="SYN-PACS"))
        fixture = PacsFixture(server, study_uid_of(case.root / "dicom"), case.root, case.case_id)
        upload(fixture.config(), *sorted((case.root / "dicom").iterdir()))
    except BaseException:
        server.stop()
        raise
    yield fixture
    server.stop()


@pytest.fixture(scope="session")
def sts_study(pacs, shared_data) -> str:
    """The real STS_001 study (T1, T2 and their RTSTRUCTs) uploaded to the session's Orthanc; its UID."""
    sts = shared_data / "real" / "mri" / "sts001_dicom"
    if not all((sts / name).is_dir() for name in STS001_SERIES):
        pytest.skip(f"STS_001 DICOM series absent under {sts}")
    upload(pacs.config(), *(sts / name for name in STS001_SERIES))
    return study_uid_of(sts / "T1")
