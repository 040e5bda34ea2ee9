"""What the session says about its case: the report (built from the results held, never by
running a model again), its export, and the plain-text results the viewer shows and copies."""

from __future__ import annotations

from ..errors import Harm3Error
from ..progress import ProgressFn, scaled
from ..report.build import build_report
from ..report.response_text import response_lines
from ..report.write import refuse_existing, report_paths, write_report_files
from ..vocabulary import not_run_note, sequence_title

RESEARCH_LINE = "research use only: not for clinical decisions"


def _provenance_notes(session) -> list:
    notes = []
    opened = session.opened
    for seq, transform in sorted(opened.volumes.transforms.items()):
        notes.append(f"{sequence_title(seq)} registered onto {sequence_title(opened.volumes.reference)} "
                     f"({transform.kind}, {transform.rotation_degrees:.1f}°, {transform.translation_mm:.1f} mm)")
    if opened.slide is not None:
        notes.append(f"slide scale: {session.scale.describe()}")
    return notes


def extra_inputs(session) -> list:
    """(role, path) of the files besides the volumes and the slide: manifest, masks, transforms."""
    case = session.case
    out = [("manifest", str(case.manifest))] if case.manifest is not None else []
    out += [(f"{seq}_mask", str(case.mask_source(seq)[0])) for seq in case.masks]
    out += [(f"{seq}_transform", str(path)) for seq, path in sorted(case.transforms.items())]
    return out


def session_report(session, notes=(), progress: ProgressFn | None = None):
    """The report of the session's case from the predictions it holds."""
    opened = session.opened
    if opened is None:
        raise Harm3Error("open a case first")
    notes = list(notes)
    for analysis in ("pcr", "survival"):
        if session.prediction(analysis) is None and not any(n.startswith(not_run_note(analysis)) for n in notes):
            notes.append(not_run_note(analysis))
    return build_report(
        opened.case_id, opened.volumes.volumes, opened.volumes.masks,
        slide_path=opened.case.slide if opened.slide is not None else None, slide=session.slide,
        pcr=session.prediction("pcr"), survival=session.prediction("survival"),
        pcr_model=session.model_used("pcr"), survival_model=session.model_used("survival"),
        heatmaps=session.heatmaps(), patch_scores=session.patch_scores(), tumour_response=session.tumour_response(),
        notes=notes + _provenance_notes(session), extra_inputs=extra_inputs(session), progress=progress)


def export_report(session, pdf_path, json_path=None, overwrite: bool = False, deidentify: bool = False,
                  salt: str = "", notes=(), require_results: bool = False, with_json: bool = True,
                  progress: ProgressFn | None = None, case_ref=None, writer=None) -> tuple:
    """Build and write the session's report: (pdf, json or None). Targets are checked before any work.

    ``case_ref``: the case the report was asked for (the viewer passes the ref open when Export
    was pressed, since the report is built in a worker); another case open -> nothing written.
    ``writer``: what writes the built report's files (default :func:`write_report_files`, here;
    the viewer passes a :class:`~napari_harm3.core.report.writer_process.ReportWriterProcess`'s
    ``write``, same arguments, run in a process of its own)."""
    changed = "the case changed while its report was being built; nothing was written"
    if case_ref is not None and session.ref != case_ref:
        raise Harm3Error(changed)
    if require_results and not session.predictions:
        raise Harm3Error("no model has run on this case: run pCR or survival first, then export the report")
    pdf, json_file = report_paths(pdf_path, json_path)
    refuse_existing((pdf, json_file if with_json else None), overwrite)
    ref = session.ref if case_ref is None else case_ref
    built = session_report(session, notes=notes, progress=scaled(progress, 0.0, 0.7))
    if session.ref != ref or built.case.case_id != ref.case_id:
        raise Harm3Error(changed)
    if deidentify:
        built = built.deidentified(salt=salt)
    written = (writer or write_report_files)(built, pdf, json_file, overwrite=overwrite, with_json=with_json,
                                 progress=scaled(progress, 0.7, 1.0))
    session.report_written.emit(written)
    return written


def pcr_lines(p) -> list:
    lines = [f"pCR model: {p.model}",
             f"p(pCR) = {p.probability:.3f} ± {p.spread:.3f} (mean ± sd over {len(p.fold_probabilities)} fold models)",
             "fold probabilities: " + ", ".join(f"{v:.3f}" for v in p.fold_probabilities),
             f"verdict: {p.verdict()} (thresholds: 0.50" + (f", training Youden {p.youden_threshold:.2f}"
                                                            if p.youden_threshold is not None else "") + ")",
             f"missing inputs: {', '.join(p.missing_inputs) or 'none'}"]
    if p.missing_inputs:
        lines.append(f"note: {', '.join(p.missing_inputs)} absent; the model ran with its placeholders for them")
    return lines


def survival_lines(p) -> list:
    lines = [f"survival model: {p.model}",
             f"risk = {p.risk:.3f} ± {p.risk_spread:.3f} (mean ± sd over {len(p.fold_risks)} fold models; higher = worse)"]
    if p.risk_percentile is not None:
        lines.append(f"risk percentile in the training cohort: {p.risk_percentile:.0f}")
    if p.risk_group is None:
        lines.append("risk group: unknown (the model card has no training-cohort threshold)")
    else:
        lines.append(f"risk group: {p.risk_group} (high when risk ≥ {p.risk_threshold:.3f}, the training cohort's median)")
    marks = p.landmarks()
    if marks:
        lines.append("predicted survival: " + ", ".join(f"S({m:g} months) = {s:.2f}" for m, s in marks.items()))
    lines.append("patches: " + ", ".join(f"{m}x {n}" for m, n in sorted(p.n_patches.items())))
    return lines


def results_text(session, notes=()) -> str:
    """Every number the session holds for its case, as plain text (what the results box shows)."""
    ref = session.ref
    lines = [f"case: {ref.case_id if ref is not None else '—'}", RESEARCH_LINE, ""]
    pcr, survival = session.prediction("pcr"), session.prediction("survival")
    lines += pcr_lines(pcr) if pcr is not None else ["pCR: not run"]
    lines.append("")
    lines += survival_lines(survival) if survival is not None else ["survival: not run"]
    response = session.tumour_response() if session.opened is not None else None
    if response is not None and response.responses:
        lines += ["", "tumour response (from the masks):"] + [f"  {line}" for line in response_lines(response)]
    if session.opened is not None and session.opened.slide is not None:
        lines += ["", f"slide scale: {session.scale.describe()}"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"
