"""The demo's model steps (``harm3 demo``): run both models with their overlays; write the report.

Each step is ``step(viewer, case_panel, out_dir) -> list[Path]`` (see ``core/cli/demo.py``); they
drive the workflow tab (``case_panel.workflow``) exactly as a user's clicks would, and wait on its
signals in a local Qt event loop. A model absent from the zoo is said clearly and skipped.
"""

from __future__ import annotations

from pathlib import Path

from ..core.report.write import report_paths
from ..core.session.reporting import pcr_lines, survival_lines
from ..core.vocabulary import ANALYSIS_TITLES

RUN_TIMEOUT_S = 900.0


def wait_for(signals, timeout_s: float = RUN_TIMEOUT_S):
    """Run the Qt event loop until one of ``signals`` is emitted; (index, args) or (None, ()) on timeout."""
    from qtpy.QtCore import QEventLoop, QTimer

    outcome: dict = {}
    loop = QEventLoop()
    slots = []
    for index, signal in enumerate(signals):
        def slot(*args, i=index):
            outcome.setdefault("hit", (i, args))
            loop.quit()

        signal.connect(slot)
        slots.append((signal, slot))
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    try:
        loop.exec()
    finally:
        timer.stop()
        for signal, slot in slots:
            signal.disconnect(slot)
    return outcome.get("hit", (None, ()))


def run_models(viewer, case_panel, out_dir=None) -> list:
    """Press "Predict pCR" then "Predict survival" (zoo models), waiting for each; prints the outcome."""
    from ..core.resources import models_dir

    workflow = case_panel.workflow
    for analysis in ("pcr", "survival"):
        title = ANALYSIS_TITLES[analysis]
        if workflow.pickers[analysis].folder() is None:
            print(f"demo: no {title} model in the model zoo ({models_dir()}): {analysis} not run; "
                  f"train the demo model with its models/*/recipe.sh", flush=True)
            continue
        print(f"demo: running {title} with {workflow.pickers[analysis].folder()}", flush=True)
        worker = workflow.run(analysis)
        if worker is None:
            continue
        index, args = wait_for([workflow.run_finished, workflow.run_failed])
        if index == 0:
            lines = (pcr_lines if analysis == "pcr" else survival_lines)(args[1])
            print("demo: " + " | ".join(lines[:4]), flush=True)
        else:
            print(f"demo: {title} not run: {args[1] if args else 'timed out'}", flush=True)
    return []


def export_report(viewer, case_panel, out_dir=None) -> list:
    """Headless: write ``<case>_report.pdf`` + ``.json`` into ``out_dir`` (replacing a previous demo's)."""
    workflow = case_panel.workflow
    if out_dir is None or case_panel.case is None:
        return []
    if not workflow.results:
        print("demo: no model ran, so no report was written", flush=True)
        return []
    pdf, json_path = report_paths(Path(out_dir) / f"{case_panel.case.case_id}_report.pdf")
    if workflow.export_report(pdf, overwrite=True) is None:
        return []
    index, args = wait_for([workflow.report_written, workflow.report_failed])
    if index != 0:
        print(f"demo: report not written: {args[0] if args else 'timed out'}", flush=True)
        return []
    return [pdf, json_path]
