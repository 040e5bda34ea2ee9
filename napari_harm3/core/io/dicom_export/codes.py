"""Coded concepts of the exported objects: standard ones (DCM, SCT, UCUM) and our private scheme.

Standard concepts are used wherever DICOM, SNOMED CT or UCUM has one: Probability (DCM 122157),
Standard Deviation (SCT 386136009), Volume (SCT 118565006), Long axis (SCT 103339001), Tumor
(SCT 108369006), High/Low risk (SCT 15508007 / 75976002), Baseline / Posttreatment time points
(DCM 121079 / 126074), Class activation (DCM 130402), units mL, mm, %, 1.

Where none exists, the concept is in the private coding scheme **99HARM3** (private designators
start with "99", PS3.16 §8.2), declared in every object's Coding Scheme Identification Sequence
(0008,0110). Its concepts — the value is stable, the meaning is what a viewer shows:

=========  ==============================================================
value      meaning
=========  ==============================================================
PCR        Pathological complete response (the finding whose probability is given)
RISK       Survival risk score (CrossFusion: minus the sum of S over the time bins)
RISKGRP    Survival risk group (value: SCT High risk / Low risk)
RISKTHR    Survival risk group threshold (median risk of the training cohort)
MISSING    Missing input (value: one of the input codes below)
IN-<seq>   the inputs: IN-t1_pre … IN-t2_post (MRI volumes), IN-slide (biopsy slide)
AXDIAM     Longest axial in-plane diameter (method of the Long axis measurement)
VOLCHG     Volume change from pre-treatment (%)
DIACHG     Long axis change from pre-treatment (%)
MASKORG    Mask origin (TEXT: RTSTRUCT, NIfTI labels, drawn, propagated …)
HARM3CAM   HARM3-Fusion class-activation map (the parametric map's quantity)
=========  ==============================================================
"""

from __future__ import annotations

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from ...vocabulary import SEQUENCE_TITLES, SEQUENCES

PRIVATE_SCHEME = "99HARM3"
PRIVATE_SCHEME_VERSION = "1"


def private(value: str, meaning: str) -> CodedConcept:
    """A concept of our private coding scheme."""
    return CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning,
                        scheme_version=PRIVATE_SCHEME_VERSION)


def coding_scheme_items() -> list:
    """The Coding Scheme Identification Sequence items declaring our private scheme."""
    return [CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME, name="napari-harm3 private concepts", version=PRIVATE_SCHEME_VERSION,
        responsible_organization="napari-harm3 project (see napari_harm3/core/io/dicom_export/codes.py)")]


# -- standard concepts ----------------------------------------------------------------------
PROBABILITY = codes.DCM.Probability
STANDARD_DEVIATION = codes.SCT.StandardDeviation
VOLUME = codes.SCT.Volume
LONG_AXIS = codes.SCT.LongAxis
TUMOUR = codes.SCT.Tumor
EDEMA = codes.SCT.Edema
LESION = codes.SCT.Lesion
ABNORMAL_STRUCTURE = codes.SCT.MorphologicallyAbnormalStructure
HIGH_RISK = codes.SCT.HighRisk
LOW_RISK = codes.SCT.LowRisk
BASELINE = codes.DCM.Baseline
POSTTREATMENT = codes.DCM.Posttreatment
IMAGING_PROCEDURE = codes.SCT.ImagingProcedure
CLASS_ACTIVATION = codes.DCM.ClassActivation
GRADIENT_CLASS_ACTIVATION = codes.DCM.GradientWeightedClassActivation
REGISTRATION = codes.DCM.Registration
ARTIFICIAL_INTELLIGENCE = codes.DCM.ArtificialIntelligence
SPATIAL_REGISTRATION = codes.DCM.SpatialRegistration
DEVICE = codes.DCM.Device
IMAGING_MEASUREMENTS = codes.DCM.ImagingMeasurements
MEASUREMENT_GROUP = codes.DCM.MeasurementGroup
TRACKING_IDENTIFIER = codes.DCM.TrackingIdentifier
REFERENCED_SEGMENT = codes.DCM.ReferencedSegment
ALGORITHM_NAME = codes.DCM.AlgorithmName
ALGORITHM_VERSION = codes.DCM.AlgorithmVersion
ALGORITHM_PARAMETERS = codes.DCM.AlgorithmParameters
POPULATION_DESCRIPTION = codes.DCM.PopulationDescription
TIME_POINT = CodedConcept(value="C2348792", scheme_designator="UMLS", meaning="Time Point")  # TID 1502's
UNIT_ML = CodedConcept(value="mL", scheme_designator="UCUM", meaning="milliliter")
UNIT_MM = codes.UCUM.Millimeter
UNIT_PERCENT = codes.UCUM.Percent
UNIT_NONE = codes.UCUM.NoUnits

# -- private concepts -----------------------------------------------------------------------
PCR = private("PCR", "Pathological complete response")
RISK = private("RISK", "Survival risk score")
RISK_GROUP = private("RISKGRP", "Survival risk group")
RISK_THRESHOLD = private("RISKTHR", "Survival risk group threshold")
MISSING_INPUT = private("MISSING", "Missing input")
AXIAL_DIAMETER = private("AXDIAM", "Longest axial in-plane diameter")
VOLUME_CHANGE = private("VOLCHG", "Volume change from pre-treatment")
DIAMETER_CHANGE = private("DIACHG", "Long axis change from pre-treatment")
MASK_ORIGIN = private("MASKORG", "Mask origin")
HARM3_MAP = private("HARM3CAM", "HARM3-Fusion class-activation map")

#: input name (a sequence key or "slide") → its private code
INPUTS = {**{s: private(f"IN-{s}", f"{SEQUENCE_TITLES[s]} MRI") for s in SEQUENCES},
          "slide": private("IN-slide", "Biopsy whole-slide image")}


def input_code(name: str) -> CodedConcept:
    """The code of an input (``t1_pre`` … or ``slide``); an unknown name gets its own private code."""
    return INPUTS.get(name) or private(f"IN-{name}"[:16], f"{name} input")


def input_name(code) -> str:
    """Inverse of :func:`input_code`."""
    for name, concept in INPUTS.items():
        if same_concept(concept, code):
            return name
    value = _key(code)[0]
    return value[3:] if value.startswith("IN-") else value


def _key(code) -> tuple[str, str]:
    """(value, scheme) of a pydicom/highdicom code or of a code sequence item read from a file."""
    if hasattr(code, "scheme_designator"):
        return str(code.value), str(code.scheme_designator)
    return str(code.CodeValue), str(code.CodingSchemeDesignator)


def same_concept(a, b) -> bool:
    """Codes equal by value and scheme (meanings may be spelt differently)."""
    return _key(a) == _key(b)
