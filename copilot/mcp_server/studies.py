"""The studies an MCP client may see and choose: de-identified rows and opaque study keys.

The calling agent is an LLM, so the server treats it as a remote LLM: a listed study is a
*key* (``s`` and 12 hex digits of a hash of its Study Instance UID, stable across restarts)
and the de-identified summary the planner is given (:func:`copilot.study.summary.study_summary`:
modality, view, body part, age band, sex, counts); never a name, ID, date, accession number,
institution, UID or free-text description. With ``--allow-identifiers`` (a local agent the
clinician trusts) the rows also carry ``copilot studies --json``'s fields.

A selector is a key, or whatever ``copilot ask --study`` reads (a UID or UID prefix, an
accession number, a patient ID, a sub-folder); what fails to match is said without naming any
other study's identifiers.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from copilot.errors import StudyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from copilot.api import Copilot
    from copilot.study.model import Study, StudySet
    from copilot.study.query import StudyQuery

__all__ = ["StudyDesk", "study_key"]

log = logging.getLogger(__name__)


def study_key(study_uid: str) -> str:
    """The opaque, stable key of a study for an MCP client."""
    return "s" + hashlib.sha256(study_uid.encode()).hexdigest()[:12]


class StudyDesk:
    """The studies of one folder or DICOMweb server, as an MCP client sees them."""

    def __init__(self, copilot: Copilot, target: str, *, allow_identifiers: bool = False) -> None:
        """``target``: the folder or DICOMweb URL given to ``copilot mcp`` (read-only)."""
        self.copilot = copilot
        self.target = target
        self.allow_identifiers = allow_identifiers
        self._lock = threading.Lock()

    def listed(self, query: StudyQuery | None = None) -> StudySet:
        """The studies (filtered by ``query``): a folder indexed with its cache, a server listed."""
        with self._lock:
            return self.copilot.open(self.target, query=query)

    def rows(self, query: StudyQuery | None = None) -> list[dict[str, Any]]:
        """One row per study: its key and de-identified summary (identifiers only when allowed)."""
        from copilot.study.summary import study_summary

        rows = []
        for study in self.listed(query).studies:
            row: dict[str, Any] = {
                "study": study_key(study.study_uid),
                "summary": study_summary(study) if study.series else _listed_summary(study),
                "modalities": list(study.modalities),
                "series": len(study.series),
                "images": sum(len(se.instances) for se in study.series),
            }
            if self.allow_identifiers:
                row.update(
                    study_uid=study.study_uid,
                    patient_id=study.patient_id,
                    study_date=study.study_date,
                    description=study.description,
                )
            rows.append(row)
        return rows

    def select(self, selector: str) -> tuple[StudySet, Study]:
        """The studies and the one ``selector`` names (a key, or an ``ask --study`` reading).
        Raises :class:`StudyError`; without identifiers allowed, its words name no study."""
        selector = selector.strip()
        if not selector:
            raise StudyError("no study given: pass a study key from list_studies")
        studies = self.listed()
        for study in studies.studies:
            if study_key(study.study_uid) == selector:
                return studies, self.copilot.open_study(study)
        try:
            with self._lock:
                return self.copilot.select(self.target, selector)
        except StudyError as exc:
            if self.allow_identifiers:
                raise
            log.info("selector %r: %s", selector, exc)
            raise StudyError(
                f"no single study matches {selector!r}: pass one study key from list_studies"
            ) from None

    def redactor(self, study: Study) -> Callable[[str], str]:
        """The de-identification of everything said about ``study`` (paths always removed;
        identifiers too unless allowed), the pass every text sent to a remote LLM goes through."""
        from copilot.text.redact import study_redactor

        return study_redactor(study, trusted=self.allow_identifiers)

    def name(self, study: Study) -> str:
        """How results name the study: its key, or its UID when identifiers are allowed."""
        return study.study_uid if self.allow_identifiers else study_key(study.study_uid)


def _listed_summary(study: Study) -> str:
    """A server's listed (not yet opened) study: its modalities only."""
    return f"{', '.join(study.modalities) or 'unknown modality'} study (not opened yet)"
