"""An answer as a DICOM Structured Report: a TID 1500 measurement report (highdicom).

What goes in, and where:

- **Measurements** (a finding with a value: areas in cm², widths, the cardiothoracic ratio) are
  TID 300 measurements named by their SNOMED CT quantity (Area, Width, Volume, Diameter,
  Length) where the label says one, with the tool's own label as the measurement's tracking
  identifier, UCUM units kept whole (:func:`copilot.dicomout.codes.unit_code`; a unit that
  cannot be coded whole leaves the value as text) and the tool that measured them (TID 4019
  algorithm identification: tool name, tool version, ``model_id=...`` and
  ``model_revision=...`` as parameters), grouped per tool in a TID 1501 measurement group;
  organs become finding sites (SNOMED CT), with a laterality only when the tool states the side
  (never for a scored finding, whose side would come from a saliency map).
- **Scored findings** (a calibrated score, or a value with a threshold) each get their own
  measurement group whose finding is SNOMED CT where the label has a code (Cardiomegaly,
  Pneumothorax, Pleural effusion, Nodule ...): the score (unit ``{score}``: calibrated, not a
  probability), the threshold, and a qualitative evaluation "above/below operating threshold".
- **Text** goes in the report's Qualitative Evaluations container (TID 1500 rows 12-15): the
  question, the composed answer, what each score means, text findings (a report draft, a VQA
  answer) and each tool that could not run, with why; all as plain text (Markdown stripped,
  :mod:`copilot.dicomout.plain`).
- **References**: every group names the source image (the study's primary instance, which the
  tools analysed); the SR's patient and study modules are copied from it, so the report files
  under the same patient and study in a PACS. They go only to the user's folder or PACS. Its
  invalid values are fixed or left out, never copied (:mod:`copilot.dicomout.source`).

Names without a standard code (a calibrated score, a threshold, a label with no SNOMED CT
concept) use the private coding scheme ``99COPILOT``, declared in the SR's Coding Scheme
Identification Sequence (:mod:`copilot.dicomout.codes`). The document is marked partial and
unverified: a machine wrote it. :func:`read_sr` reads one back (with highdicom) into plain data.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from copilot import outputs
from copilot._version import __version__
from copilot.dicomout.codes import (
    SCHEME,
    code_meaning,
    declare_schemes,
    finding_code,
    is_private,
    private_code,
    quantity_code,
    unit_back,
    unit_code,
)
from copilot.dicomout.plain import plain_text
from copilot.dicomout.signoff import AGENT_ANSWER, REVIEW, SignOff, person_name
from copilot.dicomout.source import clean_header
from copilot.errors import DicomObjectError
from copilot.escape import escape_controls
from copilot.schema import Answer, Finding, Provenance
from copilot.study.model import InstanceRecord, Study

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom import Dataset

__all__ = [
    "COMPARISON_STUDY",
    "SCHEME",
    "SRContents",
    "SRMeasurement",
    "build_sr",
    "build_sr_from",
    "encode_sr",
    "read_sr",
    "sr_evidence",
    "write_sr",
]

log = logging.getLogger(__name__)

SERIES_NUMBER = 901
SERIES_DESCRIPTION = "copilot answer (AI, unverified)"
SIGNED_SERIES_DESCRIPTION = "copilot answer (AI, approved by a person)"
ABOVE = "Above operating threshold"
BELOW = "Below operating threshold"
SCORE = "Calibrated score"
THRESHOLD = "Operating threshold"
#: DCM (112039, "Tracking Identifier"): a measurement's own label rides in it.
_TRACKING = "112039"


@dataclass(frozen=True)
class SRMeasurement:
    """One measurement read back from an SR."""

    label: str
    value: float
    unit: str | None
    tool: str
    tool_version: str
    model_id: str | None = None
    group: str = ""


@dataclass
class SRContents:
    """What :func:`read_sr` recovers from an SR written by :func:`write_sr`."""

    study_uid: str
    patient_id: str
    measurements: list[SRMeasurement] = field(default_factory=list)
    evaluations: dict[str, str] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)
    source_sop_uids: list[str] = field(default_factory=list)
    verification: str = "UNVERIFIED"
    """The document's VerificationFlag: VERIFIED once a person signed it."""
    completion: str = "PARTIAL"
    """The document's CompletionFlag."""
    verifier: str | None = None
    """The verifying observer's name (DICOM person name), when verified."""
    verifier_organization: str | None = None
    """The verifying observer's organization, when verified."""
    verified_at: str | None = None
    """When the verifying observer signed it (a DICOM DT), when verified."""

    def text(self, name: str) -> str | None:
        """The first text item with this name (e.g. ``"Answer"``), or None."""
        return next((t for n, t in self.texts if n == name), None)


# -- codes ----------------------------------------------------------------------------------
def _tracking(text: str) -> hd.sr.TrackingIdentifier:
    import highdicom as hd

    return hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=code_meaning(text))


def _stated_side(finding: Finding) -> str | None:
    """The finding's side when its tool states it: never for a scored finding (its side would
    come from a saliency map) nor for a location read off a saliency peak."""
    if finding.score is not None or "saliency" in (finding.location or "").lower():
        return None
    return finding.side


def _sites(finding: Finding) -> list[hd.sr.FindingSite]:
    """Organ and side of a finding as SNOMED CT finding sites (none when not known)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    label = finding.label.lower()
    organ = (
        codes.SCT.Heart
        if "heart" in label or "cardi" in label
        else codes.SCT.Lung
        if "lung" in label or "lesion" in label
        else codes.SCT.Thorax
        if "thora" in label
        else None
    )
    side = {"left": codes.SCT.Left, "right": codes.SCT.Right, "bilateral": codes.SCT.RightAndLeft}.get(
        _stated_side(finding) or ""
    )
    if organ is None or (organ == codes.SCT.Heart and "ratio" in label):
        return []
    return [hd.sr.FindingSite(anatomic_location=organ, laterality=side)]


def _algorithm(tool: str, provenance: Provenance | None) -> hd.sr.AlgorithmIdentification:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    parameters = [
        f"{key}={code_meaning(str(value))}"
        for key, value in (
            ("model_id", provenance.model_id if provenance else None),
            ("model_revision", provenance.model_revision if provenance else None),
        )
        if value
    ]
    return hd.sr.AlgorithmIdentification(
        name=code_meaning(tool),
        version=code_meaning(str((provenance.tool_version if provenance else "") or "unknown")),
        parameters=parameters or None,
        family=codes.cid7162.ArtificialIntelligence,
    )


# -- building -------------------------------------------------------------------------------
def _evidence(instance: InstanceRecord) -> Dataset:
    """The source image's header (never its pixels) for the patient, study and evidence
    modules; built from the index record when the file is not at hand."""
    import pydicom
    from pydicom.dataset import Dataset

    ds: Dataset | None = None
    if instance.kind == "dicom" and os.path.isfile(instance.path):
        try:
            ds = pydicom.dcmread(instance.path, stop_before_pixels=True)
        except Exception as exc:  # an unreadable source: fall back to the record
            log.debug("cannot read %s for the SR context: %s", instance.path, exc)
    if ds is None:
        ds = Dataset()
        ds.PatientName = instance.patient_name
        ds.PatientID = instance.patient_id
        ds.PatientBirthDate = instance.patient_birth_date
        ds.PatientSex = instance.patient_sex
        ds.StudyDate = instance.study_date
        ds.StudyTime = instance.study_time
        ds.AccessionNumber = instance.accession_number
        ds.StudyInstanceUID = instance.study_uid
        ds.SeriesInstanceUID = instance.series_uid
        ds.SOPInstanceUID = instance.sop_uid
        ds.SOPClassUID = instance.sop_class or "1.2.840.10008.5.1.4.1.1.7"
        ds.Modality = instance.modality or "OT"
    clean_header(ds)  # invalid values fixed or left out; missing type 2 attributes added empty
    return ds


def _number(value: float | None) -> float | None:
    """``value`` when it is a finite number, else None (NaN and infinities cannot be coded)."""
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _measurement(
    label: str, value: float, unit: hd.sr.CodedConcept, algo: Any, finding: Finding | None, quantity: Any
) -> hd.sr.Measurement:
    """One TID 300 measurement: a standard quantity (else a declared private code) named by the
    tool's own label in its tracking identifier."""
    import highdicom as hd

    return hd.sr.Measurement(
        name=quantity or private_code(label),
        value=value,
        unit=unit,
        tracking_identifier=_tracking(label),
        algorithm_id=algo,
        finding_sites=(_sites(finding) or None) if finding is not None else None,
    )


def _groups(
    answer: Answer,
    source: Any,
    provenance: Mapping[str, Provenance],
    sources: Mapping[str, Any] | None = None,
) -> tuple[list[hd.sr.MeasurementsAndQualitativeEvaluations], list[tuple[str, str]]]:
    """Measurement groups (per tool; per scored finding) and text items from the findings. A
    finding read from one of several views (``Finding.image``) references that image
    (``sources``, by SOP Instance UID) and names its view; the others reference ``source``."""
    import highdicom as hd

    per_tool: dict[str, list[hd.sr.Measurement]] = {}
    groups: list[hd.sr.MeasurementsAndQualitativeEvaluations] = []
    texts: list[tuple[str, str]] = []
    meanings: dict[str, str] = {}
    for finding in answer.findings:
        tool = finding.tool or "unknown"
        label = finding.label or "unnamed"
        algo = _algorithm(tool, provenance.get(tool))
        value, score = _number(finding.value), _number(finding.score)
        threshold = _number(finding.threshold)
        if finding.score_meaning:
            meanings.setdefault(tool, finding.score_meaning)
        try:
            unit = unit_code("score" if score is not None else finding.unit)
        except ValueError:  # a unit that cannot be coded whole: the value stays, as text
            if value is not None:
                texts.append((label, f"{value:g} {finding.unit} [{tool}]"))
            continue
        if score is not None or (value is not None and threshold is not None):
            # A scored finding (or a value judged against a threshold): its own group.
            quantity: hd.sr.CodedConcept | None
            if score is not None:
                shown, name, quantity = score, f"{label} score", private_code(SCORE)
            else:
                assert value is not None
                shown, name, quantity = value, label, quantity_code(label)
            measurements = [_measurement(name, shown, unit, algo, finding, quantity)]
            evaluations = []
            if threshold is not None:
                measurements.append(
                    _measurement(f"{label} threshold", threshold, unit, algo, None, private_code(THRESHOLD))
                )
                above = finding.above_threshold
                if above is None:
                    above = shown >= threshold
                concept = finding_code(label) or private_code(label)
                evaluations.append(
                    hd.sr.QualitativeEvaluation(concept, private_code(ABOVE if above else BELOW))
                )
            on_view = f" on the {finding.view}" if finding.image and finding.view else ""
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=_tracking(f"{tool}: {label}{on_view}"),
                    finding_type=finding_code(label) or private_code(label),
                    algorithm_id=algo,
                    measurements=measurements,
                    qualitative_evaluations=evaluations or None,
                    source_images=[(sources or {}).get(finding.image or "", source)],
                )
            )
        elif value is not None:
            per_tool.setdefault(tool, []).append(
                _measurement(label, value, unit, algo, finding, quantity_code(label))
            )
        elif finding.text:
            texts.append((label, f"{plain_text(finding.text)} [{tool}]"))
    for tool, measurements in per_tool.items():
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=_tracking(f"{tool} measurements"),
                algorithm_id=_algorithm(tool, provenance.get(tool)),
                measurements=measurements,
                source_images=[source],
            )
        )
    texts = [
        ("Score meaning", f"{tool}: {plain_text(meaning)}") for tool, meaning in meanings.items()
    ] + texts
    return groups, texts


#: The text item naming the prior study an answer was compared with (its UID, date, description, view).
COMPARISON_STUDY = "Comparison study"


def _comparison_text(answer: Answer) -> str:
    """``<StudyInstanceUID>; <date>; <description>; <view>`` of the answer's prior."""
    prior = answer.prior
    assert prior is not None
    return "; ".join(
        [prior.study_uid, prior.date or "date unknown", prior.description, prior.view or "view unknown"]
    )


def sr_evidence(answer: Answer, study: Study) -> list[Dataset]:
    """The headers (never pixels) of the images an SR of ``answer`` references: the study's
    primary instance first, then the other views its findings were read from. Raises
    :class:`DicomObjectError` when the answer is about another study or the image is not DICOM."""
    if answer.study_uid != study.study_uid:
        raise DicomObjectError(
            f"the answer is about study {answer.study_uid}, not {study.study_uid}: the SR would file it "
            "under the wrong patient"
        )
    instance = study.primary_instance()
    if instance.kind != "dicom":
        raise DicomObjectError("a DICOM SR needs a DICOM source image (this study is a plain image file)")
    # The other views the findings were read from are referenced and listed as evidence too.
    read = {f.image for f in answer.findings if f.image and f.image != instance.sop_uid}
    others = [_evidence(i) for i in study.instances() if i.sop_uid in read and i.kind == "dicom"]
    return [_evidence(instance), *others]


def build_sr(answer: Answer, study: Study, signoff: SignOff | None = None) -> Any:
    """The answer as a highdicom ``ComprehensiveSR`` about ``study`` (see the module rules);
    ``signoff`` records a person's approval (or an explicit unreviewed send): see
    :mod:`copilot.dicomout.signoff`.

    Its findings and provenance are read typed (:class:`copilot.schema.Finding`). Raises
    :class:`DicomObjectError` when the answer is about another study or the report cannot be
    built."""
    return build_sr_from(answer, sr_evidence(answer, study), signoff)


#: VerifyingOrganization (Type 1: never empty) when the approver named none and the image's
#: header records no institution.
ORGANIZATION_NOT_RECORDED = "Not recorded"


def _verifying_organization(signoff: SignOff, source: Dataset) -> str:
    """The approver's organization: as given, else the source image's InstitutionName, else
    :data:`ORGANIZATION_NOT_RECORDED` (the attribute is Type 1 in the Verifying Observer
    Sequence)."""
    # An LO value: no backslash or control characters, at most 64 characters.
    institution = " ".join(
        re.sub(r"[\x00-\x1f\x7f\\]", " ", str(source.get("InstitutionName", "") or "")).split()
    )
    institution = institution[:64].strip()
    return signoff.organization or institution or ORGANIZATION_NOT_RECORDED


def build_sr_from(answer: Answer, evidence: Sequence[Dataset], signoff: SignOff | None = None) -> Any:
    """:func:`build_sr` from the images' headers :func:`sr_evidence` read (primary first): what a
    draft keeps, so it is signed later without the study at hand."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    if not evidence or str(evidence[0].get("StudyInstanceUID", "")) != answer.study_uid:
        raise DicomObjectError(
            f"the answer is about study {answer.study_uid}, not the source image's: the SR would file "
            "it under the wrong patient"
        )
    first, others = evidence[0], list(evidence[1:])
    source = hd.sr.SourceImageForMeasurementGroup(
        referenced_sop_class_uid=first.SOPClassUID, referenced_sop_instance_uid=first.SOPInstanceUID
    )
    provenance = answer.provenance
    try:
        sources = {
            ds.SOPInstanceUID: hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=ds.SOPClassUID, referenced_sop_instance_uid=ds.SOPInstanceUID
            )
            for ds in others
        }
        groups, texts = _groups(answer, source, provenance, sources)
        if not groups:  # TID 1500 needs one group: the image the answer is about, unmeasured
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="copilot answer"),
                    source_images=[source],
                )
            )
        device = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=generate_uid(entropy_srcs=["dicom-copilot device"]),
                name="copilot",
                manufacturer_name="copilot",
                model_name="clinical imaging copilot",
            ),
        )
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=device),
            procedure_reported=codes.SCT.ImagingProcedure,
            imaging_measurements=groups,
        )
        text = signoff.text if signoff is not None else str(answer.text or "")
        items = [("Question", plain_text(answer.question)), ("Answer", plain_text(text))]
        if signoff is not None:
            if signoff.verified:
                items.append((AGENT_ANSWER, plain_text(signoff.agent_text)))
            items.append((REVIEW, signoff.review_note()))
        items += texts
        if answer.prior is not None and answer.prior.study_uid:
            items.append((COMPARISON_STUDY, plain_text(_comparison_text(answer))))
        items += [
            (
                "Not checked",
                plain_text(
                    f"{t.name}: {t.status}"
                    + (f": {t.detail}" if t.detail else "")
                    + (f" (fix: {t.fix})" if t.fix else "")
                ),
            )
            for t in answer.tools
            if t.status != "ok"
        ]
        container = hd.sr.ContainerContentItem(
            name=hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations"),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        container.ContentSequence = hd.sr.ContentSequence(
            [
                hd.sr.TextContentItem(
                    name=private_code(name),
                    value=escape_controls(text, keep="\n\t\r"),
                    relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
                )
                for name, text in items
                if text.strip()
            ]
        )
        report[0].ContentSequence.append(container)
        verified = signoff is not None and signoff.verified
        sr = hd.sr.ComprehensiveSR(
            evidence=[first, *others],
            content=report[0],
            series_instance_uid=hd.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="copilot",
            is_complete=verified,
            is_verified=verified,
            verifying_observer_name=person_name(signoff.approver or "") if signoff and verified else None,
            verifying_organization=_verifying_organization(signoff, first) if signoff and verified else None,
        )
        if signoff is not None and verified and signoff.approved_at is not None:
            from pydicom.valuerep import DT

            # The time the person approved, not the time the file was made.
            sr.VerifyingObserverSequence[0].VerificationDateTime = DT(signoff.approved_at.astimezone())
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomObjectError(f"cannot build the DICOM SR: {exc}") from exc
    declare_schemes(sr)  # 99COPILOT codes come with their Coding Scheme Identification entry
    # Text items, code meanings and units (a plug-in's "µg/kg/min") are written as UTF-8.
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.SeriesDescription = SIGNED_SERIES_DESCRIPTION if verified else SERIES_DESCRIPTION
    sr.SoftwareVersions = __version__
    sr.ManufacturerModelName = "clinical imaging copilot"
    return sr


def write_sr(
    answer: Answer,
    study: Study,
    out: str | os.PathLike[str],
    *,
    sources: Sequence[str | os.PathLike[str]] = (),
    signoff: SignOff | None = None,
) -> Path:
    """Write the answer's SR to ``out`` through the write guard (never into a study: the
    study's files and ``sources`` are protected); returns the path written. ``signoff``: as
    for :func:`build_sr`."""
    data = encode_sr(build_sr(answer, study, signoff))
    protected = [*sources, *(i.path for i in study.instances())]
    return outputs.write_bytes(out, data, sources=protected)


def encode_sr(sr: Any) -> bytes:
    """The SR's file bytes, once highdicom has read them back as a TID 1500 report (nothing is
    written); :class:`DicomObjectError` when it cannot."""
    import io

    import highdicom as hd

    buffer = io.BytesIO()
    try:
        sr.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        if not isinstance(hd.sr.srread(io.BytesIO(data)).content, hd.sr.MeasurementReport):
            raise ValueError("not a TID 1500 measurement report")
    except Exception as exc:  # highdicom's readers raise many types
        raise DicomObjectError(f"the DICOM SR does not read back: {exc}") from exc
    return data


# -- reading back ---------------------------------------------------------------------------
def _algorithm_of(item: Any) -> tuple[str, str, str | None]:
    """(tool, version, model id) from a content item's TID 4019 children."""
    from pydicom.sr.codedict import codes

    name = version = ""
    model = None
    for child in getattr(item, "ContentSequence", []) or []:
        concept = child.ConceptNameCodeSequence[0]
        key = (concept.CodeValue if "CodeValue" in concept else "", concept.CodingSchemeDesignator)
        text = str(getattr(child, "TextValue", ""))
        if key == (codes.DCM.AlgorithmName.value, "DCM"):
            name = text
        elif key == (codes.DCM.AlgorithmVersion.value, "DCM"):
            version = text
        elif key == (codes.DCM.AlgorithmParameters.value, "DCM") and text.startswith("model_id="):
            model = text.removeprefix("model_id=")
    return name, version, model


def _label_of(item: Any) -> str:
    """A measurement's own label: its TID 300 tracking identifier."""
    for child in getattr(item, "ContentSequence", []) or []:
        concept = child.ConceptNameCodeSequence[0]
        if concept.get("CodeValue") == _TRACKING and concept.CodingSchemeDesignator == "DCM":
            return str(getattr(child, "TextValue", ""))
    return ""


def read_sr(path: str | os.PathLike[str] | BinaryIO) -> SRContents:
    """Read an SR written by :func:`write_sr` back with highdicom: every measurement (label,
    value, unit, tool, version, model id), every qualitative evaluation and text item.
    ``path``: the file, or its bytes already read (an open binary file, named by its ``name``)."""
    import highdicom as hd

    try:
        sr = hd.sr.srread(path)
    except Exception as exc:
        where = getattr(path, "name", path)
        raise DicomObjectError(f"{where}: not a readable DICOM SR ({type(exc).__name__})") from exc
    report = sr.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise DicomObjectError(f"{path}: not a TID 1500 measurement report")
    out = SRContents(study_uid=str(sr.StudyInstanceUID), patient_id=str(sr.get("PatientID", "")))
    out.verification = str(sr.get("VerificationFlag", "") or "UNVERIFIED")
    out.completion = str(sr.get("CompletionFlag", "") or "PARTIAL")
    for observer in sr.get("VerifyingObserverSequence", None) or []:
        out.verifier = str(observer.get("VerifyingObserverName", "") or "") or None
        out.verifier_organization = str(observer.get("VerifyingOrganization", "") or "") or None
        out.verified_at = str(observer.get("VerificationDateTime", "") or "") or None
    for group in report.get_image_measurement_groups():
        for image in group.source_images:
            if image.referenced_sop_instance_uid not in out.source_sop_uids:
                out.source_sop_uids.append(image.referenced_sop_instance_uid)
        for m in group.get_measurements():
            tool, version, model = _algorithm_of(m[0])
            out.measurements.append(
                SRMeasurement(
                    label=_label_of(m[0]) or m.name.meaning,
                    value=float(m.value),
                    unit=unit_back(m.unit),
                    tool=tool,
                    tool_version=version,
                    model_id=model,
                    group=group.tracking_identifier or "",
                )
            )
        for evaluation in group.get_qualitative_evaluations():
            value: Any = evaluation.value  # a CodedConcept (highdicom types it as a number)
            if is_private(value) and str(value.meaning) in (ABOVE, BELOW):  # not the algorithm family
                finding = (group.tracking_identifier or "").partition(": ")[2] or evaluation.name.meaning
                out.evaluations[finding] = str(value.meaning)
    for item in report[0].ContentSequence:
        if item.ValueType == "CONTAINER" and item.ConceptNameCodeSequence[0].CodeValue == "C0034375":
            for text in item.ContentSequence:
                out.texts.append((text.ConceptNameCodeSequence[0].CodeMeaning, str(text.TextValue)))
    return out
