"""Retrieve time of the real STS_001 study (T1 + T2 + two RTSTRUCTs: 82 objects, 34.8 MB) from a
local Orthanc on 127.0.0.1, ours against DCMTK's ``getscu`` in the same run.

    .venv/bin/python benchmarks/bench_pacs.py [--repeats 5]

Starts two Orthanc servers (Debian's ``orthanc``, the test fixture's configuration from
``tests/orthanc.py``): one as packaged (DCMTK leaves Nagle's algorithm on) and one with
``TCP_NODELAY=1`` in its environment; uploads the study to each with our C-STORE, then times,
median of ``--repeats``:

- ``C-GET`` — ``core.pacs.retrieve.retrieve_study`` (transfer only, files written);
- ``C-MOVE`` — the same through our storage SCP started for the retrieval;
- ``pacs get`` — ``core.pacs.study_case.retrieve_case``: C-GET + series rules + RTSTRUCTs
  attached + every volume and mask decoded through the case seam + ``case.yaml``;
- ``getscu`` — DCMTK 3.6.7 ``getscu`` (study level, files written), the peer;

and, for small objects, the synthetic case's four series (96 objects of 96×96 / 80×80 int16).
Prints seconds and MB/s. The machine is shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from orthanc import ORTHANC_AET, OUR_AET, OrthancServer, free_port, study_uid_of, upload  # noqa: E402

from napari_harm3.core.pacs.config import parse_pacs_config  # noqa: E402
from napari_harm3.core.pacs.retrieve import retrieve_study  # noqa: E402
from napari_harm3.core.pacs.study_case import retrieve_case  # noqa: E402

SHARED = Path(os.environ.get("HARM3_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = SHARED / "real" / "mri" / "sts001_dicom"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def time_ours(config, study: str, scratch: Path, repeats: int, case: bool = False) -> tuple[float, int]:
    times, size = [], 0
    for n in range(repeats):
        target = scratch / f"{time.monotonic_ns()}-{n}"
        start = time.perf_counter()
        if case:
            result = retrieve_case(config, study, target)
            size = result.retrieval.n_bytes
        else:
            size = retrieve_study(config, study, target).n_bytes
        times.append(time.perf_counter() - start)
        shutil.rmtree(target)
    return statistics.median(times), size


def time_getscu(server: OrthancServer, study: str, scratch: Path, repeats: int) -> tuple[float, int] | None:
    getscu = shutil.which("getscu")
    if getscu is None:
        return None
    times, size = [], 0
    for n in range(repeats):
        target = scratch / f"getscu-{n}"
        target.mkdir()
        start = time.perf_counter()
        subprocess.run([getscu, "-aet", OUR_AET, "-aec", ORTHANC_AET, "127.0.0.1", str(server.dicom_port),
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "-od", str(target)],
                       check=True, capture_output=True, env={**os.environ, "TCP_NODELAY": "1"})
        times.append(time.perf_counter() - start)
        size = folder_bytes(target)
        shutil.rmtree(target)
    return statistics.median(times), size


def start_server(folder: Path, nodelay: bool) -> OrthancServer:
    server = OrthancServer(folder, our_port=free_port())
    if not nodelay:  # the packaged default: DCMTK keeps Nagle's algorithm on
        server.environment = {"TCP_NODELAY": "0"}
    return server.start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not STS.is_dir():
        print(f"STS_001 DICOM not found at {STS}")
        return 1
    from napari_harm3.core.io.dicom_write import write_case_dicom
    from napari_harm3.core.synth.cohort import make_case

    work = Path(tempfile.mkdtemp(prefix="bench-pacs-"))
    servers = []
    try:
        synth = write_case_dicom(make_case(work / "SYN-BENCH", seed=11, slide_size=(512, 512), case_id="SYN-BENCH"))
        studies = {"STS_001": study_uid_of(STS / "T1"), "synthetic": study_uid_of(synth.root / "dicom")}
        folders = {"STS_001": [STS / n for n in ("T1", "T2", "T1_rtstruct", "T2_rtstruct")],
                   "synthetic": sorted((synth.root / "dicom").iterdir())}
        print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores, shared machine)")
        print(f"{'Orthanc':18s} {'study':10s} {'how':9s} {'objects MB':>10s} {'seconds':>8s} {'MB/s':>6s}")
        for nodelay in (False, True):
            server = start_server(work / f"orthanc-{nodelay}", nodelay)
            servers.append(server)
            config = parse_pacs_config(server.config_dict())
            label = "TCP_NODELAY=1" if nodelay else "as packaged"
            for name, items in folders.items():
                upload(config, *items)
                rows = {
                    "C-GET": time_ours(config, studies[name], work, args.repeats),
                    "C-MOVE": time_ours(parse_pacs_config(server.config_dict(retrieve="move")), studies[name], work,
                                        args.repeats),
                    "pacs get": time_ours(config, studies[name], work, args.repeats, case=True),
                    "getscu": time_getscu(server, studies[name], work, args.repeats),
                }
                for how, measured in rows.items():
                    if measured is None:
                        continue
                    seconds, size = measured
                    print(f"{label:18s} {name:10s} {how:9s} {size / 1e6:10.1f} {seconds:8.2f} {size / 1e6 / seconds:6.1f}",
                          flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
