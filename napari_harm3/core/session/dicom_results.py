"""The session's results as standard DICOM: what ``harm3 export-dicom`` and the viewer's button write.

From what the case session holds — the DICOM source series of the case, its volumes and masks
(through the registration seam), the predictions, the model folders, the tumour response and the
PDF report — this assembles the plain inputs of ``core/io/dicom_export`` and writes, into one
folder renamed into place at the end: a Segmentation per MRI series with masks (and pre masks
propagated onto a post series without its own), a Parametric Map per Grad-CAM map, a TID 1500
Structured Report of the numbers and the PDF report as an Encapsulated PDF.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import Harm3Error
from ..io.dicom_export.case_objects import CaseObjects, SeriesObjects, write_case_objects
from ..io.dicom_export.common import ExportSettings, read_source_instance, read_source_series
from ..io.dicom_export.segmentation import SegmentSpec, segments_of
from ..io.dicom_export.sr import AlgorithmInfo, PcrNumbers, ReportNumbers, SurvivalNumbers, TumourNumbers
from ..io.dicom_series import is_dicom_file
from ..io.mri import is_nifti_path
from ..mri.tumour_response import CONTRASTS, propagate_mask, registration_text
from ..progress import ProgressFn, scaled
from ..report.deidentify import pseudonym
from ..report.render_pdf import write_report_pdf
from ..vocabulary import MODEL_KINDS, ordered_sequences, sequence_title

#: the architecture named in the SR's algorithm identification
ARCHITECTURES = {kind: "HARM3-Fusion" for kind in MODEL_KINDS["pcr"]} | {k: "CrossFusion" for k in MODEL_KINDS["survival"]}
RESEARCH_TITLE = "(research use only)"


def dicom_sources(case) -> tuple:
    """({sequence: SourceSeries} of the DICOM MRI, the slide's SourceSeries or None, NIfTI sequences)."""
    series, nifti = {}, []
    for sequence in ordered_sequences(case.mri):
        path, uid = case.mri_source(sequence)
        if is_nifti_path(path):
            nifti.append(sequence)
        else:
            series[sequence] = read_source_series(path, uid)
    slide = None
    if case.slide is not None and Path(case.slide).is_file() and is_dicom_file(case.slide):
        slide = read_source_instance(case.slide)
    return series, slide, nifti


def algorithm_info(folder) -> AlgorithmInfo:
    """The SR's algorithm identification of a model folder: name, version, architecture, weight sha256."""
    card = folder.card
    return AlgorithmInfo(name=card.name, version=card.version, architecture=ARCHITECTURES.get(card.kind, card.kind),
                         weights=tuple((w.file, w.sha256) for w in card.weights))


def report_numbers(session, response) -> ReportNumbers:
    """The SR's numbers from the session's predictions and the tumour response records."""
    pcr = survival = None
    p, s = session.prediction("pcr"), session.prediction("survival")
    if p is not None:
        pcr = PcrNumbers(probability=float(p.probability), spread=float(p.spread),
                         algorithm=algorithm_info(session.model_used("pcr")), n_models=len(p.fold_probabilities),
                         missing_inputs=tuple(p.missing_inputs))
    if s is not None:
        survival = SurvivalNumbers(risk=float(s.risk), spread=float(s.risk_spread),
                                   algorithm=algorithm_info(session.model_used("survival")), risk_group=s.risk_group,
                                   risk_threshold=None if s.risk_threshold is None else float(s.risk_threshold),
                                   n_models=len(s.fold_risks), missing_inputs=tuple(s.missing_inputs))
    rows = []
    for record in response.responses:
        for point, size in (("pre", record.pre), ("post", record.post)):
            if size is None:
                continue
            after = point == "post"
            rows.append(TumourNumbers(
                sequence=size.sequence, label=size.label, time_point=point, volume_ml=size.volume_ml,
                diameter_mm=size.longest_axial_diameter_mm,
                volume_change_percent=record.volume_change_percent if after else None,
                diameter_change_percent=record.diameter_change_percent if after else None,
                mask_origin=size.mask_origin, registration=record.registration if after else ""))
    return ReportNumbers(pcr=pcr, survival=survival, tumours=tuple(rows))


def series_objects(sources: dict, volumes, gradcam: dict) -> list:
    """What to write per DICOM series: its masks, the pre masks propagated onto it, its map."""
    frames = {s: v.frame_of_reference_uid for s, v in volumes.volumes.items()}
    out = []
    for sequence, source in sources.items():
        volume = volumes.volumes[sequence]
        segments = []
        mask = volumes.masks.get(sequence)
        if mask is not None and mask.shape == volume.shape:
            segments += segments_of(mask)
        for pre, post in CONTRASTS.values():
            if sequence == post and mask is None and pre in volumes.masks:
                how = registration_text(pre, post, volumes.transforms, frames)
                moved = propagate_mask(volumes.masks[pre], volume, from_sequence=pre, registration=how)
                segments.append(SegmentSpec(label=f"{moved.label_names[1]} (from {sequence_title(pre)})",
                                            mask=moved.data == 1, propagated_from=moved.metadata["propagated_from"]))
        cam = gradcam.get(sequence)
        out.append(SeriesObjects(sequence=sequence, source=source, affine=volumes.original_affines[sequence],
                                 segments=tuple(segments), activation_map=None if cam is None else cam.data))
    return out


def _pdf_bytes(report) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.pdf"
        write_report_pdf(report, path)
        return path.read_bytes()


def export_dicom(session, out_dir, deidentify: bool = False, salt: str = "", overwrite: bool = False, notes=(),
                 progress: ProgressFn | None = None) -> tuple:
    """Write the session's case results as DICOM into ``out_dir``: (WrittenObject, ...), notes."""
    opened = session.opened
    if opened is None:
        raise Harm3Error("open a case first")
    sources, slide, nifti = dicom_sources(opened.case)
    if not sources and slide is None:
        raise Harm3Error(f"{opened.case_id}: nothing to export as DICOM: the case has no DICOM input "
                         "(DICOM objects must reference DICOM MRI series or a DICOM slide)")
    notes = list(notes)
    if nifti:
        notes.append(f"segmentations and parametric maps need DICOM MRI sources; {', '.join(nifti)} "
                     f"{'is' if len(nifti) == 1 else 'are'} NIfTI and left out")
    report = session.report(notes=notes, progress=scaled(progress, 0.0, 0.3))
    if deidentify:
        report = report.deidentified(salt=salt)
    pcr = session.prediction("pcr")
    objects = CaseObjects(series=tuple(series_objects(sources, opened.volumes, session.gradcam_maps())),
                          numbers=report_numbers(session, session.tumour_response()), pdf=_pdf_bytes(report),
                          slide=slide, map_method=(pcr.gradcam_method if pcr is not None else "") or "hirescam, evidence both")
    settings = ExportSettings(pseudonym=pseudonym(opened.case_id, salt) if deidentify else None)
    written = write_case_objects(objects, out_dir, settings, overwrite=overwrite, title=RESEARCH_TITLE,
                                 progress=scaled(progress, 0.3, 1.0))
    return written, tuple(notes)
