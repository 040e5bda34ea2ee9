"""``harm3 export-dicom CASE --out DIR`` — the case's results as standard DICOM objects.

Runs the models (the zoo's, or ``--pcr-model`` / ``--survival-model``), measures the tumour
masks, and writes into DIR, each object in its source study with a new series and referencing
its source images: a Segmentation per MRI series with masks (and masks propagated from pre to
post), a Parametric Map per MRI class-activation map, a TID 1500 Structured Report of the
numbers and the PDF report as an Encapsulated PDF. DIR is written in one rename at the end
(nothing half-written); an existing non-empty DIR needs ``--overwrite``. Segmentations and
maps need DICOM MRI; with NIfTI-only MRI the SR and PDF are written against the slide's DICOM
if the slide is DICOM, else nothing is written.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import Harm3Error

#: card kind → architecture named in the SR's algorithm identification
ARCHITECTURES = {"harm3-fusion": "HARM3-Fusion", "harm3": "HARM3-Fusion", "crossfusion": "CrossFusion"}
RESEARCH_TITLE = "(research use only)"


def register(subparsers) -> None:
    parser = subparsers.add_parser("export-dicom", help="write the case's results as DICOM SR, SEG, parametric maps, PDF",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("case", metavar="CASE", help="case folder or its manifest")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the DICOM objects into")
    parser.add_argument("--deidentify", action="store_true",
                        help="pseudonym instead of name and ID; no dates or other identifiers (as harm3 report)")
    parser.add_argument("--pseudonym-salt", default="", help="secret mixed into the pseudonym (as harm3 report)")
    parser.add_argument("--pcr-model", type=Path, help="HARM3-Fusion model folder (default: the zoo's)")
    parser.add_argument("--survival-model", type=Path, help="CrossFusion model folder (default: the zoo's)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.set_defaults(handler=run)


@dataclass(frozen=True, eq=False)
class CaseResults:
    """The predictions of one case and the model folders they came from (None: not run, see notes)."""

    pcr: object = None                 # core.predict.pcr.PcrPrediction
    survival: object = None            # core.predict.survival.SurvivalPrediction
    pcr_model: object = None           # core.models.zoo.ModelFolder
    survival_model: object = None
    notes: tuple = ()


def run_models(case, pcr_model_dir=None, survival_model_dir=None, device: str = "auto") -> CaseResults:
    """Run both models on ``case`` as ``harm3 report`` does (the one place this command predicts;
    the case session will take its place). An analysis that cannot run becomes a note."""
    from ..predict import pcr as pcr_prediction, survival as survival_prediction
    from ..report.build import PCR_KIND, SURVIVAL_KIND, select_model

    found, notes = {}, []
    for label, kinds, explicit, module in (("pCR", PCR_KIND, pcr_model_dir, pcr_prediction),
                                           ("Survival", SURVIVAL_KIND, survival_model_dir, survival_prediction)):
        model, note = select_model(kinds, explicit)
        if model is None:
            notes.append(f"{label} analysis not run: {note}")
            continue
        try:
            found[label] = (model, module.predict_case(model.path, case, device=device))
        except Harm3Error as exc:
            notes.append(f"{label} analysis not run: {exc}")
    pcr_model, pcr = found.get("pCR", (None, None))
    survival_model, survival = found.get("Survival", (None, None))
    return CaseResults(pcr=pcr, survival=survival, pcr_model=pcr_model, survival_model=survival_model, notes=tuple(notes))


def algorithm_info(folder):
    """The SR's algorithm identification of a zoo model folder: name, version, architecture, weight sha256."""
    from ..hashing import sha256_file
    from ..io.dicom_export.sr import AlgorithmInfo

    sums = folder.sha256()
    weights = []
    for path in folder.weight_files:
        relative = str(Path(path).resolve().relative_to(Path(folder.path).resolve()))
        weights.append((relative, sums.get(relative) or sha256_file(path)))
    architecture = str(folder.card.get("architecture") or ARCHITECTURES.get(folder.kind, folder.kind))
    return AlgorithmInfo(name=folder.name, version=folder.version, architecture=architecture, weights=tuple(weights))


def case_numbers(results: CaseResults, response):
    """:class:`ReportNumbers` from the predictions and the tumour response records."""
    from ..io.dicom_export.sr import PcrNumbers, ReportNumbers, SurvivalNumbers, TumourNumbers

    pcr = survival = None
    if results.pcr is not None:
        p = results.pcr
        pcr = PcrNumbers(probability=float(p.probability), spread=float(p.spread),
                         algorithm=algorithm_info(results.pcr_model), n_models=len(p.fold_probabilities),
                         missing_inputs=tuple(p.missing_inputs))
    if results.survival is not None:
        s = results.survival
        survival = SurvivalNumbers(risk=float(s.risk), spread=float(s.risk_spread),
                                   algorithm=algorithm_info(results.survival_model), risk_group=s.risk_group,
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


def dicom_sources(case) -> tuple:
    """({sequence: SourceSeries} of the DICOM MRI, the slide's SourceSeries or None, NIfTI sequences)."""
    from ..io.dicom_export.common import read_source_instance, read_source_series
    from ..io.dicom_series import is_dicom_file
    from ..io.mri import is_nifti_path
    from ..vocabulary import ordered_sequences

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


def series_objects(sources: dict, volumes, results: CaseResults) -> list:
    """What to write per DICOM series: its masks, the pre masks propagated onto it, its map."""
    from ..io.dicom_export.case_objects import SeriesObjects
    from ..io.dicom_export.segmentation import SegmentSpec, segments_of
    from ..mri.tumour_response import CONTRASTS, propagate_mask, registration_text
    from ..vocabulary import sequence_title

    maps = dict(getattr(results.pcr, "gradcam", None) or {})
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
        cam = maps.get(sequence)
        cam_data = None if cam is None else getattr(cam, "data", cam)
        out.append(SeriesObjects(sequence=sequence, source=source, affine=volumes.original_affines[sequence],
                                 segments=tuple(segments), activation_map=cam_data))
    return out


def report_pdf(case, results: CaseResults, deidentify: bool, salt: str) -> bytes:
    """The case's PDF report (as ``harm3 report`` writes it) from the results already computed."""
    from ..report.build import build_report_from_results
    from ..report.integration import case_inputs, pcr_result, survival_result
    from ..report.render_pdf import write_report_pdf

    loaded = case_inputs(case)
    report = build_report_from_results(
        loaded.summary, loaded.volumes, loaded.slide,
        pcr=None if results.pcr is None else pcr_result(results.pcr),
        survival=None if results.survival is None else survival_result(results.survival),
        pcr_model=results.pcr_model, survival_model=results.survival_model, notes=results.notes,
        extra_inputs=loaded.extra_inputs)
    if deidentify:
        report = report.deidentified(salt=salt)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.pdf"
        write_report_pdf(report, path)
        return path.read_bytes()


def run(args) -> int:
    from ..device import pick_device
    from ..io.case import load_case
    from ..io.dicom_export.case_objects import CaseObjects, write_case_objects
    from ..io.dicom_export.common import ExportSettings
    from ..mri.case_volumes import read_case_volumes
    from ..mri.tumour_response import case_tumour_response
    from ..report.deidentify import pseudonym

    out = Path(args.out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not args.overwrite:
        raise Harm3Error(f"{out} exists and is not empty; pass --overwrite or choose another folder")
    pick_device(args.device)  # a wrong --device is an error before any work
    start = time.perf_counter()
    case = load_case(args.case)
    sources, slide, nifti = dicom_sources(case)
    if not sources and slide is None:
        raise Harm3Error(f"{case.case_id}: nothing to export as DICOM: the case has no DICOM input "
                         "(DICOM objects must reference DICOM MRI series or a DICOM slide)")
    if nifti:
        print(f"note: segmentations and parametric maps need DICOM MRI sources; {', '.join(nifti)} "
              f"{'is' if len(nifti) == 1 else 'are'} NIfTI and left out")
    results = run_models(case, args.pcr_model, args.survival_model, args.device)
    volumes = read_case_volumes(case)
    response = case_tumour_response(volumes)
    objects = CaseObjects(series=tuple(series_objects(sources, volumes, results)),
                          numbers=case_numbers(results, response),
                          pdf=report_pdf(case, results, args.deidentify, args.pseudonym_salt), slide=slide,
                          map_method=str(getattr(results.pcr, "gradcam_method", "") or "hirescam, evidence both"))
    settings = ExportSettings(pseudonym=pseudonym(str(case.case_id), args.pseudonym_salt) if args.deidentify else None)
    written = write_case_objects(objects, out, settings, overwrite=args.overwrite, title=RESEARCH_TITLE)
    for item in written:
        what = f"{item.kind} {item.sequence}" if item.sequence else item.kind
        print(f"wrote {item.path} ({what})")
    for note in results.notes:
        print(f"  note: {note}")
    print(f"{len(written)} DICOM objects in {time.perf_counter() - start:.1f} s; research use only")
    return 0
