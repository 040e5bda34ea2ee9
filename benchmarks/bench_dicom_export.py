"""Export time per case of ``harm3 export-dicom``, phase by phase, against the PDF report (same run).

Case: the real STS_001 study in ``../shared/data`` (T1 40×512×512, T2 40×384×384, both RTSTRUCTs),
the zoo's demo models. Phases, each timed once per repeat (best of ``--repeats``):

- **models**: ``run_models`` (HARM3-Fusion ensemble with its maps; CrossFusion stops: no slide);
- **volumes + response**: the case seam and the tumour measurements;
- **PDF report**: the report of the same results rendered to PDF — the peer: what ``harm3 report``
  adds on top of the models, so the DICOM objects' cost reads as a multiple of it;
- **DICOM objects**: ``write_case_objects`` (2 SEG, 2 parametric maps, SR, encapsulated PDF),
  with each object's build + save time from its own call;
- **dciodvfy**: validating the six files (not part of the export).

    .venv/bin/python benchmarks/bench_dicom_export.py [--repeats 3] [--deidentify]

The machine is shared: read the ratio, and quote the load printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("HARM3_SHARED_DATA", ROOT.parent / "shared" / "data")) / "real" / "mri" / "sts001_dicom"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def one_run(case_path: Path, out: Path, deidentify: bool) -> dict:
    from napari_harm3.core.cli.export_dicom import case_numbers, dicom_sources, report_pdf, run_models, series_objects
    from napari_harm3.core.io.case import load_case
    from napari_harm3.core.io.dicom_export import case_objects
    from napari_harm3.core.io.dicom_export.common import ExportSettings
    from napari_harm3.core.mri.case_volumes import read_case_volumes
    from napari_harm3.core.mri.tumour_response import case_tumour_response
    from napari_harm3.core.report.deidentify import pseudonym

    figures = {}
    case = load_case(case_path)
    (sources, slide, _), figures["DICOM headers"] = timed(dicom_sources, case)
    results, figures["models"] = timed(run_models, case, None, None, "cpu")
    start = time.perf_counter()
    volumes = read_case_volumes(case)
    response = case_tumour_response(volumes)
    figures["volumes + response"] = time.perf_counter() - start
    pdf, figures["PDF report (peer)"] = timed(report_pdf, case, results, deidentify, "")
    objects = case_objects.CaseObjects(series=tuple(series_objects(sources, volumes, results)),
                                       numbers=case_numbers(results, response), pdf=pdf, slide=slide,
                                       map_method=results.pcr.gradcam_method)
    settings = ExportSettings(pseudonym=pseudonym(case.case_id) if deidentify else None)
    per_object, originals = {}, {}
    for name in ("build_segmentation", "build_parametric_map", "build_structured_report", "build_encapsulated_pdf"):
        originals[name] = getattr(case_objects, name)

        def wrapper(*args, _original=originals[name], _name=name, **kwargs):
            result, seconds = timed(_original, *args, **kwargs)
            per_object[_name] = per_object.get(_name, 0.0) + seconds
            return result

        setattr(case_objects, name, wrapper)
    try:
        written, figures["DICOM objects"] = timed(case_objects.write_case_objects, objects, out, settings)
    finally:
        for name, original in originals.items():
            setattr(case_objects, name, original)
    figures.update({f"  {k.replace('build_', '')}": v for k, v in per_object.items()})
    tool = shutil.which("dciodvfy")
    if tool:
        start = time.perf_counter()
        errors = 0
        for item in written:
            report = subprocess.run([tool, str(item.path)], capture_output=True, text=True)
            errors += sum(line.startswith("Error") for line in (report.stdout + report.stderr).splitlines())
        figures["dciodvfy (6 files)"] = time.perf_counter() - start
        figures["dciodvfy errors"] = errors
    figures["bytes written"] = sum(item.path.stat().st_size for item in written)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deidentify", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"real data not found at {SHARED}", file=sys.stderr)
        return 2
    import yaml

    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores; shared machine)")
    best: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        case = Path(folder) / "STS_001"
        case.mkdir()
        (case / "case.yaml").write_text(yaml.safe_dump({
            "case_id": "STS_001", "mri": {"t1_pre": str(SHARED / "T1"), "t2_pre": str(SHARED / "T2")},
            "masks": {"t1_pre": str(SHARED / "T1_rtstruct"), "t2_pre": str(SHARED / "T2_rtstruct")}}))
        for repeat in range(args.repeats):
            figures = one_run(case, Path(folder) / f"out{repeat}", args.deidentify)
            for key, value in figures.items():
                best[key] = min(best.get(key, value), value)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    total = sum(best[k] for k in ("DICOM headers", "models", "volumes + response", "PDF report (peer)", "DICOM objects"))
    for key, value in best.items():
        print(f"{key:24s} {value:10.2f} s" if isinstance(value, float) else f"{key:24s} {value:10d}")
    print(f"{'export, total':24s} {total:10.2f} s")
    print(f"DICOM objects / PDF report: {best['DICOM objects'] / best['PDF report (peer)']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
