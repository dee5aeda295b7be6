"""What of a study may reach an LLM: an allow-list of header fields, and whether an image may go.

Every LLM request (planner, reviewer, composer) says about a study only what
:class:`LLMStudyFacts` holds, built by :func:`llm_study_facts` from the fields named in
:data:`LLM_STUDY_FIELDS`, as the server wire (:mod:`copilot.remote.wire`) sends a tool only a
record with its identifying fields emptied. Nothing else of the index record goes: no path,
folder or file name, no UID, no name, ID, date, institution, physician, station or device, and
no free-text field but the study and series descriptions, which pass the caller's redactor
(:class:`copilot.text.redact.Redactor`). Age is a decade band and the view, body part and
modality are the coded values. ``tests/test_phi.py`` fails when a field outside the list
reaches a request.

A radiograph with ``BurnedInAnnotation = YES`` has text (a name, a date, an MRN) drawn into
its pixels, which no header redaction removes. Such an image is never sent unless the
``llm_send_burned_in`` setting allows it. Where the header does not say, a secondary capture
(a screenshot, a scanned film, a plain PNG or JPEG opened as a study) is treated as annotated:
those are the images that usually carry burned-in text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from copilot.config import Settings
from copilot.study.model import InstanceRecord, Study
from copilot.study.summary import study_summary

__all__ = [
    "LLM_STUDY_FIELDS",
    "SECONDARY_CAPTURE_CLASSES",
    "LLMStudyFacts",
    "burned_in_risk",
    "image_may_be_sent",
    "llm_study_facts",
]

#: The study, series and instance fields an LLM request may be built from (model.field), and how.
LLM_STUDY_FIELDS: dict[str, str] = {
    "Study.patient_age": "as a decade band (90 and over grouped)",
    "Study.patient_sex": "female, male, other or not stated",
    "Study.description": "free text, redacted, at most 200 characters",
    "Series.modality": "the coded value, named (DX: digital radiograph)",
    "Series.body_part": "the coded value",
    "Series.view": "the coded value",
    "Series.number": "as a label of its description",
    "Series.description": "free text, redacted, at most 200 characters",
    "Series.instances": "counted only",
}
#: Most characters of a free-text description sent.
DESCRIPTION_LIMIT = 200


@dataclass(frozen=True)
class LLMStudyFacts:
    """Everything an LLM request may say about a study (built from :data:`LLM_STUDY_FIELDS`)."""

    #: Modality, body part, view and image count per series; age band and sex.
    summary: str
    #: (label, redacted text) of the study and series descriptions, in series order.
    descriptions: tuple[tuple[str, str], ...] = ()

    def quoted(self) -> str:
        """The descriptions as ``label: 'text'`` lines (the ``<study-data>`` fence quotes them)."""
        return "\n".join(f"{label}: {text!r}" for label, text in self.descriptions)


def _clean(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text or "")[:DESCRIPTION_LIMIT].strip()


def llm_study_facts(study: Study, redact: Callable[[str], str]) -> LLMStudyFacts:
    """The allow-listed facts of ``study``, its free text passed through ``redact``."""
    fields = [("study description", study.description)]
    fields += [
        (f"series {s.number} description" if s.number is not None else "series description", s.description)
        for s in study.series
    ]
    descriptions = tuple((label, redact(_clean(text))) for label, text in fields if _clean(text))
    return LLMStudyFacts(summary=study_summary(study), descriptions=descriptions)


#: Secondary Capture Image Storage and its multi-frame variants.
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)


def burned_in_risk(instance: InstanceRecord) -> str | None:
    """Why the image may hold burned-in identifiers, or None when its header says it does not."""
    flag = (instance.burned_in_annotation or "").strip().upper()
    if flag == "YES":
        return "its header says it has burned-in annotations (BurnedInAnnotation = YES)"
    if flag == "NO":
        return None
    if instance.kind == "image":
        return "it is a plain image file, which may have text drawn into it"
    if instance.sop_class in SECONDARY_CAPTURE_CLASSES or instance.modality == "OT":
        return "it is a secondary capture whose header does not say whether it has burned-in text"
    return None


def image_may_be_sent(instance: InstanceRecord, settings: Settings) -> bool:
    """True when images may go to the LLM and this one carries no (possible) burned-in text."""
    if not settings.llm_send_images:
        return False
    return settings.llm_send_burned_in or burned_in_risk(instance) is None
