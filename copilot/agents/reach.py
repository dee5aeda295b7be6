"""What to say when no installed tool reads this CT or MR for what the question asks.

A question about the image of a head CT ("is there an intracranial haemorrhage?") that no
installed tool reads for that modality and body part is answered honestly: which reading is
missing and what kind of plug-in would give it, never "out of scope". The line names the study's
modality and body part (header text, as data) and the finding the question names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from copilot.study.model import Study

__all__ = ["asked_about", "no_reader_line"]

#: The modalities read as volumes (a radiograph with no reader keeps its generic line).
VOLUME_MODALITIES = ("CT", "MR")
_ASKED = re.compile(
    r"\b(?:is there|are there|any|signs? of|evidence of|looking for|rule out|exclude|detect|find)\s+"
    r"(?:(?:signs?|evidence) of\s+)?(?:an?\s+|any\s+|the\s+)?(?P<what>[a-z][a-z' -]{2,48}?)\s*"
    r"(?:[?.!]|$|\b(?:on|in|at|here|present|seen|visible)\b)",
    re.I,
)


def asked_about(question: str, findings: Sequence[str] = ()) -> str:
    """What the question asks to be read: the findings the router named, else the words after
    "is there"/"any"/"signs of"; "" when neither says."""
    if findings:
        return ", ".join(f.lower() for f in findings)
    m = _ASKED.search(question)
    return m.group("what").strip().lower() if m else ""


def _subject(study: Study) -> str:
    """ "head CT": the body part (lower case) and the modality of the study's volume series."""
    series = [s for s in study.series if s.modality in VOLUME_MODALITIES]
    modality = series[0].modality if series else ""
    body = next((s.body_part.lower() for s in series if s.body_part), "")
    return f"{body} {modality}".strip()


def no_reader_line(study: Study, question: str, findings: Sequence[str] = ()) -> str:
    """The answer's line when no installed tool reads this CT/MR study for the question, e.g.
    "No installed tool reads head CT for intracranial haemorrhage; a plug-in that declares it
    (e.g. a head CT intracranial haemorrhage detector) would."; "" for other modalities."""
    if not any(m in VOLUME_MODALITIES for m in study.modalities):
        return ""
    subject = _subject(study)
    what = asked_about(question, findings)
    if what:
        return (
            f"No installed tool reads {subject} for {what}; a plug-in that declares it "
            f"(e.g. a {subject} {what} detector) would."
        )
    return (
        f"No installed tool reads {subject} images for this question; a plug-in that declares "
        f"{subject} in its manifest would."
    )
