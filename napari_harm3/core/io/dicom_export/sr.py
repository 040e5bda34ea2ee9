"""The case's numbers as a DICOM Structured Report: a TID 1500 Imaging Measurement Report.

Content (concepts in :mod:`.codes`), one measurement group (TID 1501/1411) each:

- **pCR** (tracking id "HARM3-Fusion pCR", finding: 99HARM3 PCR): Probability (DCM 122157),
  unit 1, with its fold-ensemble Standard Deviation (SCT 386136009) as the measurement's
  statistical property (TID 311); the algorithm (TID 4019: card name, version, architecture and
  the sha256 of every weight file); a "Missing input" evaluation per absent input.
- **Survival** ("CrossFusion survival"): Survival risk score (99HARM3 RISK) with its fold sd,
  the risk group threshold, the risk group (SCT High risk / Low risk), algorithm, missing inputs.
- **Tumour** per mask measured (TID 1411 referencing its segment in our SEG, else TID 1501):
  Volume (SCT 118565006, mL), Long axis (SCT 103339001, mm, method 99HARM3 AXDIAM), after
  treatment the volume and long-axis change from pre-treatment (%), time point (Baseline /
  Posttreatment), and as text the mask origin and the registration used.

Numbers are written as NUM items with their exact binary value (FloatingPointValue) next to the
decimal string, so :func:`read_report_numbers` gives back the very floats written. The image
library (TID 1600) describes each source series by its first image (modality, frame of
reference, geometry); the evidence sequences list every source instance and the SEGs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import highdicom as hd
import pydicom
from highdicom.sr import (AlgorithmIdentification, CodedConcept, Measurement, MeasurementProperties,
                          MeasurementStatisticalProperties, NumContentItem, QualitativeEvaluation, TextContentItem,
                          TimePointContext, TrackingIdentifier)
from highdicom.sr.enum import RelationshipTypeValues

from . import codes
from .common import ExportSettings, finish, identity_copies, new_uid

PCR_TRACKING = "HARM3-Fusion pCR"
SURVIVAL_TRACKING = "CrossFusion survival"
TIME_POINTS = {"pre": ("pre-treatment", codes.BASELINE), "post": ("post-treatment", codes.POSTTREATMENT)}


@dataclass(frozen=True)
class AlgorithmInfo:
    """A model as its card and weight files identify it."""

    name: str
    version: str
    architecture: str = ""
    weights: tuple = ()          # ((relative file, sha256 hex), ...)

    def parameters(self) -> list:
        return ([f"architecture={self.architecture}"] if self.architecture else []) + \
               [f"sha256 {file}={digest}" for file, digest in self.weights]


@dataclass(frozen=True)
class PcrNumbers:
    probability: float
    spread: float                # sd over the fold models
    algorithm: AlgorithmInfo
    n_models: int = 0
    missing_inputs: tuple = ()   # input names: t1_pre … t2_post, slide


@dataclass(frozen=True)
class SurvivalNumbers:
    risk: float
    spread: float
    algorithm: AlgorithmInfo
    risk_group: str | None = None        # "high" / "low"
    risk_threshold: float | None = None
    n_models: int = 0
    missing_inputs: tuple = ()


@dataclass(frozen=True)
class TumourNumbers:
    """One tumour mask's measurement (a row of ``core.mri.tumour_response``)."""

    sequence: str
    label: str
    time_point: str                      # "pre" or "post"
    volume_ml: float
    diameter_mm: float
    volume_change_percent: float | None = None
    diameter_change_percent: float | None = None
    mask_origin: str = ""
    registration: str = ""


@dataclass(frozen=True)
class ReportNumbers:
    """Everything the SR says, as plain numbers."""

    pcr: PcrNumbers | None = None
    survival: SurvivalNumbers | None = None
    tumours: tuple = ()


# ---------------------------------------------------------------- writing


def _num(concept, value: float, unit) -> NumContentItem:
    return NumContentItem(name=concept, value=float(value), unit=unit, relationship_type=RelationshipTypeValues.CONTAINS)


def _with_spread(concept, value: float, spread: float, n_models: int, algorithm) -> Measurement:
    population = f"fold ensemble of {n_models} models" if n_models else "fold ensemble"
    stats = MeasurementStatisticalProperties(values=[_num(codes.STANDARD_DEVIATION, spread, codes.UNIT_NONE)],
                                             description=population)
    return Measurement(name=concept, value=float(value), unit=codes.UNIT_NONE, algorithm_id=algorithm,
                       properties=MeasurementProperties(measurement_statistical_properties=stats))


def _algorithm(info: AlgorithmInfo) -> AlgorithmIdentification:
    return AlgorithmIdentification(name=info.name, version=info.version, parameters=info.parameters() or None,
                                   family=codes.ARTIFICIAL_INTELLIGENCE)


def _missing(names) -> list:
    return [QualitativeEvaluation(name=codes.MISSING_INPUT, value=codes.input_code(n)) for n in names]


def _pcr_group(pcr: PcrNumbers):
    algorithm = _algorithm(pcr.algorithm)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(identifier=PCR_TRACKING, uid=new_uid()), finding_type=codes.PCR,
        measurements=[_with_spread(codes.PROBABILITY, pcr.probability, pcr.spread,
                                                           pcr.n_models, algorithm)],
        qualitative_evaluations=_missing(pcr.missing_inputs) or None)


def _survival_group(survival: SurvivalNumbers):
    algorithm = _algorithm(survival.algorithm)
    measurements = [_with_spread(codes.RISK, survival.risk, survival.spread, survival.n_models, algorithm)]
    if survival.risk_threshold is not None:
        measurements.append(Measurement(name=codes.RISK_THRESHOLD, value=float(survival.risk_threshold),
                                        unit=codes.UNIT_NONE, algorithm_id=algorithm))
    evaluations = _missing(survival.missing_inputs)
    if survival.risk_group is not None:
        group = codes.HIGH_RISK if survival.risk_group == "high" else codes.LOW_RISK
        evaluations.insert(0, QualitativeEvaluation(name=codes.RISK_GROUP, value=group))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(identifier=SURVIVAL_TRACKING, uid=new_uid()),
        measurements=measurements, qualitative_evaluations=evaluations or None)


def _tumour_group(row: TumourNumbers, segmentation=None, segment_number=None):
    measurements = [Measurement(name=codes.VOLUME, value=float(row.volume_ml), unit=codes.UNIT_ML),
                    Measurement(name=codes.LONG_AXIS, value=float(row.diameter_mm), unit=codes.UNIT_MM,
                                method=codes.AXIAL_DIAMETER)]
    for concept, value in ((codes.VOLUME_CHANGE, row.volume_change_percent),
                           (codes.DIAMETER_CHANGE, row.diameter_change_percent)):
        if value is not None:
            measurements.append(Measurement(name=concept, value=float(value), unit=codes.UNIT_PERCENT))
    label, point_type = TIME_POINTS[row.time_point]
    common = {"tracking_identifier": TrackingIdentifier(identifier=f"{row.label} {row.sequence}"[:64], uid=new_uid()),
              "time_point_context": TimePointContext(time_point=label, time_point_type=point_type),
              "finding_type": codes.TUMOUR, "measurements": measurements}
    if segmentation is not None:
        segment = hd.sr.ReferencedSegment.from_segmentation(_per_frame_segment_ids(segmentation),
                                                            segment_number=segment_number)
        group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=segment, **common)
    else:
        group = hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    for concept, text in ((codes.MASK_ORIGIN, row.mask_origin), (codes.REGISTRATION, row.registration)):
        if text:
            group[0].ContentSequence.append(
                TextContentItem(name=concept, value=text, relationship_type=RelationshipTypeValues.CONTAINS))
    return group


def _per_frame_segment_ids(segmentation):
    """The SEG as highdicom's ReferencedSegment reads it. A one-segment SEG keeps its Segment
    Identification in the shared functional groups (standard, and what highdicom writes), but
    ``ReferencedSegment.from_segmentation`` looks for it in every per-frame item: give it a copy
    whose frames carry it."""
    shared = segmentation.SharedFunctionalGroupsSequence[0]
    if "SegmentIdentificationSequence" not in shared:
        return segmentation
    view = copy.copy(segmentation)
    frames = copy.deepcopy(segmentation.PerFrameFunctionalGroupsSequence)
    for item in frames:
        if "SegmentIdentificationSequence" not in item:
            item.SegmentIdentificationSequence = copy.deepcopy(shared.SegmentIdentificationSequence)
    view.PerFrameFunctionalGroupsSequence = frames
    return view


def _segment_number(segmentation, label: str) -> int | None:
    for item in segmentation.SegmentSequence:
        if str(item.SegmentLabel) == label[:64]:
            return int(item.SegmentNumber)
    return None


def _reference(ds) -> pydicom.Dataset:
    """The UIDs of an instance, all the SR's evidence lists need (not its pixels)."""
    reference = pydicom.Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        setattr(reference, keyword, ds[keyword].value)
    return reference


def _one_per_series(datasets) -> list:
    """The first image of each series: the image library's entries (modality, frame of reference,
    orientation, spacing). Listing all 80 STS_001 images there cost 4.6 s of 4.8 s per SR; the
    evidence sequence still lists every source instance."""
    seen, out = set(), []
    for ds in datasets:
        if str(ds.SeriesInstanceUID) not in seen:
            seen.add(str(ds.SeriesInstanceUID))
            out.append(ds)
    return out


def build_structured_report(numbers: ReportNumbers, evidence, settings: ExportSettings, series_number: int,
                            segmentations: dict | None = None, title: str = "") -> hd.sr.Comprehensive3DSR:
    """A TID 1500 report of ``numbers``.

    ``evidence``: pydicom headers of the source images (the SR takes patient and study from the
    first, lists all in its image library and evidence); ``segmentations``: {sequence: SEG
    dataset} whose segments the tumour groups reference (by label).
    """
    segmentations = dict(segmentations or {})
    groups = [g for g in (numbers.pcr and _pcr_group(numbers.pcr),
                          numbers.survival and _survival_group(numbers.survival)) if g]
    for row in numbers.tumours:
        seg = segmentations.get(row.sequence)
        number = _segment_number(seg, row.label) if seg is not None else None
        groups.append(_tumour_group(row, seg if number is not None else None, number))
    sources = identity_copies(evidence, settings)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DEVICE,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=new_uid(), name=settings.model_name, manufacturer_name=settings.manufacturer,
            model_name=settings.model_name, serial_number=settings.device_serial))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.IMAGING_PROCEDURE, imaging_measurements=groups,
        referenced_images=_one_per_series(sources))
    description = f"napari-harm3 results {title}".strip()[:64]
    sr = hd.sr.Comprehensive3DSR(
        evidence=sources + [_reference(segmentations[k]) for k in sorted(segmentations)], content=report[0],
        series_instance_uid=new_uid(), series_number=series_number, sop_instance_uid=new_uid(), instance_number=1,
        is_complete=True, series_description=description, coding_schemes=codes.coding_scheme_items(),
        manufacturer=settings.manufacturer, manufacturer_model_name=settings.model_name,
        software_versions=settings.software_version, device_serial_number=settings.device_serial)
    return finish(sr, settings)


# ---------------------------------------------------------------- reading back


def _concept(item):
    return item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None


def _children(item, concept=None, value_type=None):
    for child in item.get("ContentSequence", []):
        name = _concept(child)
        if concept is not None and (name is None or not codes.same_concept(name, concept)):
            continue
        if value_type is not None and child.ValueType != value_type:
            continue
        yield child


def _value(num_item) -> float:
    measured = num_item.MeasuredValueSequence[0]
    return float(measured.FloatingPointValue) if "FloatingPointValue" in measured else float(measured.NumericValue)


def _first(item, concept, value_type):
    return next(_children(item, concept, value_type), None)


def _algorithm_info(group, measurement) -> AlgorithmInfo:
    """The algorithm identification of the measurement (TID 300), else of its group."""
    holder = measurement if _first(measurement, codes.ALGORITHM_NAME, "TEXT") is not None else group
    name = _first(holder, codes.ALGORITHM_NAME, "TEXT")
    version = _first(holder, codes.ALGORITHM_VERSION, "TEXT")
    architecture, weights = "", []
    for parameter in _children(holder, codes.ALGORITHM_PARAMETERS, "TEXT"):
        key, _, value = str(parameter.TextValue).partition("=")
        if key == "architecture":
            architecture = value
        elif key.startswith("sha256 "):
            weights.append((key[len("sha256 "):], value))
    return AlgorithmInfo(name=str(name.TextValue) if name else "", version=str(version.TextValue) if version else "",
                         architecture=architecture, weights=tuple(weights))


def _spread(measurement) -> tuple[float, int]:
    """(standard deviation, number of models) of a measurement's statistical properties (TID 311)."""
    sd = _first(measurement, codes.STANDARD_DEVIATION, "NUM")
    description = _first(measurement, codes.POPULATION_DESCRIPTION, "TEXT")
    words = [w for w in str(description.TextValue).split() if w.isdigit()] if description is not None else []
    return (_value(sd) if sd is not None else float("nan")), (int(words[0]) if words else 0)


def _missing_names(group) -> tuple:
    return tuple(codes.input_name(item.ConceptCodeSequence[0]) for item in _children(group, codes.MISSING_INPUT, "CODE"))


def _tracking(group) -> str:
    item = _first(group, codes.TRACKING_IDENTIFIER, "TEXT")
    return str(item.TextValue) if item else ""


def _tumour_numbers(group) -> TumourNumbers:
    label, _, sequence = _tracking(group).rpartition(" ")
    nums = {str(_concept(n).CodeValue): _value(n) for n in _children(group, value_type="NUM")}
    texts = {str(_concept(t).CodeValue): str(t.TextValue) for t in _children(group, value_type="TEXT")}
    point = texts.get(codes.TIME_POINT.value, "")
    return TumourNumbers(sequence=sequence, label=label, time_point="post" if point.startswith("post") else "pre",
                         volume_ml=nums[codes.VOLUME.value], diameter_mm=nums[codes.LONG_AXIS.value],
                         volume_change_percent=nums.get(codes.VOLUME_CHANGE.value),
                         diameter_change_percent=nums.get(codes.DIAMETER_CHANGE.value),
                         mask_origin=texts.get(codes.MASK_ORIGIN.value, ""),
                         registration=texts.get(codes.REGISTRATION.value, ""))


def read_report_numbers(path_or_dataset) -> ReportNumbers:
    """The :class:`ReportNumbers` an SR written by :func:`build_structured_report` holds."""
    ds = path_or_dataset if isinstance(path_or_dataset, pydicom.Dataset) else pydicom.dcmread(str(path_or_dataset))
    measurements = next(_children(ds, codes.IMAGING_MEASUREMENTS, "CONTAINER"), None)
    pcr = survival = None
    tumours = []
    for group in _children(measurements, codes.MEASUREMENT_GROUP, "CONTAINER") if measurements else ():
        tracking = _tracking(group)
        if tracking == PCR_TRACKING:
            item = _first(group, codes.PROBABILITY, "NUM")
            spread, n = _spread(item)
            pcr = PcrNumbers(probability=_value(item), spread=spread, algorithm=_algorithm_info(group, item),
                             n_models=n, missing_inputs=_missing_names(group))
        elif tracking == SURVIVAL_TRACKING:
            item = _first(group, codes.RISK, "NUM")
            spread, n = _spread(item)
            threshold = _first(group, codes.RISK_THRESHOLD, "NUM")
            group_code = _first(group, codes.RISK_GROUP, "CODE")
            risk_group = None if group_code is None else (
                "high" if codes.same_concept(group_code.ConceptCodeSequence[0], codes.HIGH_RISK) else "low")
            survival = SurvivalNumbers(risk=_value(item), spread=spread, algorithm=_algorithm_info(group, item),
                                       risk_group=risk_group, risk_threshold=None if threshold is None else _value(threshold),
                                       n_models=n, missing_inputs=_missing_names(group))
        else:
            tumours.append(_tumour_numbers(group))
    return ReportNumbers(pcr=pcr, survival=survival, tumours=tuple(tumours))


def referenced_segments(path_or_dataset) -> dict:
    """{tracking identifier: (SEG SOP instance UID, segment number)} of the tumour groups."""
    ds = path_or_dataset if isinstance(path_or_dataset, pydicom.Dataset) else pydicom.dcmread(str(path_or_dataset))
    out = {}
    measurements = next(_children(ds, codes.IMAGING_MEASUREMENTS, "CONTAINER"), None)
    for group in _children(measurements, codes.MEASUREMENT_GROUP, "CONTAINER") if measurements else ():
        for item in _children(group, codes.REFERENCED_SEGMENT, "IMAGE"):
            ref = item.ReferencedSOPSequence[0]
            out[_tracking(group)] = (str(ref.ReferencedSOPInstanceUID), int(ref.ReferencedSegmentNumber))
    return out


__all__ = ["AlgorithmInfo", "PcrNumbers", "SurvivalNumbers", "TumourNumbers", "ReportNumbers",
           "build_structured_report", "read_report_numbers", "referenced_segments", "CodedConcept"]
