"""Whether an image may be sent to an LLM: pixels can carry identifiers too.

A radiograph with ``BurnedInAnnotation = YES`` has text (a name, a date, an MRN) drawn into
its pixels, which no header redaction removes. Such an image is never sent unless the
``llm_send_burned_in`` setting allows it. Where the header does not say, a secondary capture
(a screenshot, a scanned film, a plain PNG or JPEG opened as a study) is treated as annotated:
those are the images that usually carry burned-in text.
"""

from __future__ import annotations

from copilot.config import Settings
from copilot.study.model import InstanceRecord

__all__ = ["SECONDARY_CAPTURE_CLASSES", "burned_in_risk", "image_may_be_sent"]

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
