"""Removing patient identifiers from text before it leaves the machine.

:class:`Redactor` is the one pass every text sent to an LLM goes through (the question, the
de-identified summary, quoted header text, tool results and details, knowledge passages):

1. paths: the study's own file and folder names, then anything shaped like a path
   (``[PATH]``): a path never reaches an LLM, not even a trusted one;
2. known identifiers of the study (names, IDs, birth and study dates, accession numbers,
   institutions, physicians) wherever they appear, in any case, with DICOM's ``^`` name
   separators undone, the name parts on their own, the distinctive words of an institution
   ("St Elsewhere" of "St Elsewhere Hospital") and of the folders above the study's series
   folders (a ward, a patient's name: "Rainbow" of ``Rainbow_Ward/``), leaving out folders
   named like a study or series description and radiology words
   (:data:`copilot.text.radiology_words.RADIOLOGY_WORDS`: "Bone_Mediastinal_Recon",
   "Portable_Upright" are not identifiers) (``[REDACTED]``);
3. the study's person names as people type them (:mod:`copilot.text.patient_names`):
   nicknames and short forms of a given name ("Zeb", "Zebby" of ZEBEDIAH; "Bill" of WILLIAM)
   and the tokens next to a name ("Zeb Quixote", "Quixote, Zeb", "Mr Zeb Q.") (``[REDACTED]``);
4. identifiers no header announced (:mod:`copilot.text.deid`: dates in any format, phone
   numbers, national identifiers, ward and bed, ages over 89, person names) (``[DATE]``...).

``Redactor(trusted=True)`` (``llm_trusted``) keeps identifiers but still removes paths.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from copilot.text.deid import FUNCTION_WORDS, PATTERNS, Span, deidentify, find_phi
from copilot.text.labeler import FINDING_PATTERNS
from copilot.text.names import CLINICAL_WORDS

if TYPE_CHECKING:
    from copilot.study.model import Study
from copilot.text.patient_names import PersonNames
from copilot.text.radiology_words import RADIOLOGY_WORDS

__all__ = ["REDACTED", "Redactor", "record_redactor", "redact_text", "study_redactor"]

log = logging.getLogger(__name__)

REDACTED = "[REDACTED]"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words of institution names too generic to identify one ("General Hospital").
GENERIC_INSTITUTION_WORDS = _words(
    """
    the of and for at st saint hospital hospitals medical center centre clinic clinics general
    university health healthcare regional community memorial infirmary royal national county
    city trust foundation institute radiology imaging department dept children's childrens
    women's womens services service group care practice nhs district teaching
    """
)
#: Words of folder names too generic to identify anyone ("/data/PACS/export/studies").
GENERIC_FOLDER_WORDS = _words(
    """
    tmp temp var home users user data pacs dicom dcm dicomdir export exports import imports
    image images img study studies series scan scans file files folder folders archive archives
    cd dvd disk media mnt volumes volume private public shared share work cache downloads
    documents desktop incoming outgoing inbox outbox new old copy backup test tests pytest
    anon anonymised anonymized deid sample samples case cases patient patients
    """
)
_FINDING_WORDS = re.compile("|".join(p for ps in FINDING_PATTERNS.values() for p in ps), re.IGNORECASE)
_PATH_PATTERNS = [p for kind, p in PATTERNS if kind == "PATH"]


def _variants(ident: str) -> set[str]:
    ident = ident.strip()
    if len(ident) < 2:
        return set()
    spaced = re.sub(r"\s+", " ", ident.replace("^", " ")).strip()
    out = {ident, spaced, ident.replace("^", ", ").strip(", ")}
    parts = [p for p in re.split(r"[\^\s,]+", ident) if p]
    if len(parts) >= 2:
        out.add(f"{parts[1]} {parts[0]}")  # DOE^JANE -> JANE DOE
    return {v for v in out if v}


def _institution_words(name: str) -> set[str]:
    words = [w for w in re.findall(r"[A-Za-z][\w'&-]*", name)]
    keep = {w for w in words if len(w) >= 4 and w.lower() not in GENERIC_INSTITUTION_WORDS}
    return {w for w in keep if w.lower() not in CLINICAL_WORDS}


_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _folder_words(part: str) -> set[str]:
    """Distinctive words of a file or folder name ("Rainbow" of ``Rainbow_Ward-7B``), split at
    punctuation, digits and case changes; generic, clinical, radiology and finding words are
    left out."""
    return {
        w
        for w in _NAME_WORD.findall(part)
        if len(w) >= 3
        and w.lower() not in GENERIC_FOLDER_WORDS
        and w.lower() not in CLINICAL_WORDS
        and w.lower() not in FUNCTION_WORDS
        and w.lower() not in RADIOLOGY_WORDS
        and not _FINDING_WORDS.search(w)
    }


def _ancestor_folders(paths: list[str]) -> list[str]:
    """Names of the folders above the study's series folders: above the folders where the
    files' paths part (one folder of files: above that folder, which is the series')."""
    parents = sorted({str(PurePath(p).parent) for p in paths})
    if not parents:
        return []
    if len(parents) == 1:
        top = PurePath(parents[0]).parent
    else:
        try:
            top = PurePath(os.path.commonpath(parents))
        except ValueError:  # absolute and relative, or other drives: each file on its own
            return sorted({part for p in parents for part in PurePath(p).parent.parts[1:]})
    return list(top.parts[1:])


def _described(part: str, descriptions: frozenset[str]) -> bool:
    """Whether a folder is named after a study or series description: all its words are in
    one ("Chest_PA" for "CHEST PA")."""
    words = {w.lower() for w in _NAME_WORD.findall(part) if len(w) >= 2}
    return bool(words) and words <= descriptions


def _path_parts(paths: Iterable[str]) -> set[str]:
    """File and folder names of the study that could identify (not "data", "chest",
    "Coronal")."""
    out: set[str] = set()
    spared = CLINICAL_WORDS | GENERIC_FOLDER_WORDS | RADIOLOGY_WORDS
    for raw in paths:
        p = PurePath(raw)
        out.add(str(p))
        for part in (*p.parts[1:], p.stem):
            if len(part) >= 3 and part.lower() not in spared and not part.isdigit():
                out.add(part)
    return out


def _alternation(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({v for v in values if v.strip()}, key=len, reverse=True)
    if not ordered:
        return None
    # Longest first, so "DOE^JANE" goes before "DOE"; word edges, so "DOE" keeps "Doesn't".
    body = "|".join(re.escape(v) for v in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


class Redactor:
    """Replaces a study's identifiers and identifier-like text (see the module docstring).
    ``descriptions``: the study's and series' descriptions (folders named after one are not
    identifiers)."""

    def __init__(
        self,
        identifiers: Iterable[str] = (),
        *,
        paths: Iterable[str] = (),
        institutions: Iterable[str] = (),
        descriptions: Iterable[str] = (),
        trusted: bool = False,
    ) -> None:
        self.trusted = trusted
        identifiers = [i for i in identifiers if i and i.strip()]
        paths = list(paths)
        known: set[str] = set()
        for ident in identifiers:
            known |= _variants(ident)
        for name in institutions:
            known |= _institution_words(name)
        described = frozenset(w.lower() for d in descriptions for w in _NAME_WORD.findall(d))
        for part in _ancestor_folders(paths):
            if _described(part, described):
                log.debug("folder named like a description: its words are not identifiers")
                continue
            known |= _folder_words(part)
        self._paths = _alternation(_path_parts(paths))
        self._known = None if trusted else _alternation(known)
        self._names = PersonNames(i for i in identifiers if "^" in i)

    def __call__(self, text: str) -> str:
        """``text`` with identifiers removed."""
        if self._paths is not None:
            text = self._paths.sub("[PATH]", text)
        if self.trusted:
            for pattern in _PATH_PATTERNS:
                text = pattern.sub("[PATH]", text)
            return text
        text = self._person_names(text)
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return deidentify(text)

    def _person_names(self, text: str) -> str:
        spans = self._names.spans(text) if self._names else []
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return text

    def spans(self, text: str) -> list[Span]:
        """Where :func:`copilot.text.deid.find_phi` finds identifiers (no known ones)."""
        return find_phi(text)


def redact_text(text: str) -> str:
    """De-identify text that belongs to no study (``copilot plan --llm``)."""
    return Redactor()(text)


def study_redactor(study: Study, *, trusted: bool = False) -> Redactor:
    """The redaction of everything said about ``study`` to a party outside the machine (a
    remote LLM, an MCP client): its identifiers, file paths, institutions and descriptions, and
    identifier-like text; ``trusted`` keeps identifiers (paths are always removed)."""
    instances = list(study.instances())
    return Redactor(
        study.identifiers,
        paths=[i.path for i in instances],
        institutions={i.institution for i in instances if i.institution},
        descriptions=[study.description, *(s.description for s in study.series)],
        trusted=trusted,
    )


def record_redactor(record: Any | None) -> Redactor:
    """The redaction of text about one image (an :class:`~copilot.study.model.InstanceRecord`:
    its identifiers, its path and institution, and identifier-like text); for no image, the
    identifier-like text only. What is sent to a tool outside the process (a ``copilot serve``
    server, a mapped MCP tool) goes through it."""
    if record is None:
        return Redactor()
    institution = getattr(record, "institution", "")
    return Redactor(
        record.identifiers,
        paths=[record.path] if getattr(record, "path", "") else [],
        institutions=[institution] if institution else [],
    )
