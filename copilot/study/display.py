"""How a notebook shows a study and a study set (``_repr_markdown_``, ``_repr_html_``).

For the person at the screen, like the CLI's study line (:meth:`Study.identity`): patient ID,
age/sex, date and description, never the patient's name or birth date. Every header value is
data and is escaped (:mod:`copilot.schema.display`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from copilot.schema.display import Cell, html_table, markdown_cell, markdown_table

if TYPE_CHECKING:
    from copilot.study.model import Study, StudySet

__all__ = ["SHOWN", "study_html", "study_markdown", "study_set_html", "study_set_markdown"]

#: Studies listed in a study set's table; the rest are counted.
SHOWN = 50

_SERIES_HEADERS = ("series", "modality", "view", "images", "description")
_STUDY_HEADERS = ("#", "study", "modalities", "series", "images", "study UID")


def _series_rows(study: Study) -> list[list[Cell]]:
    return [[s.number, s.modality, s.view, len(s.instances), s.description] for s in study.series]


def _images(study: Study) -> int | None:
    """Images in the study (a listed study: the server's count, None when it gave none)."""
    if study.listing is not None and not study.series:
        return study.listing.instances
    return sum(len(s.instances) for s in study.series)


def _study_rows(studies: StudySet) -> list[list[Cell]]:
    return [
        [
            i,
            s.identity(),
            ", ".join(s.modalities),
            len(s.series) if s.opened else (s.listing.series if s.listing else None),
            _images(s),
            s.study_uid,
        ]
        for i, s in enumerate(studies.studies[:SHOWN])
    ]


def _listed_note(study: Study) -> str:
    return "" if study.opened else " (listed by the server, not opened yet)"


def study_markdown(study: Study) -> str:
    """The study line and its series, as Markdown."""
    head = f"**{markdown_cell(study.identity())}**{_listed_note(study)}  \n"
    head += f"Study UID {markdown_cell(study.study_uid)}"
    if not study.series:
        return head
    return f"{head}\n\n{markdown_table(_SERIES_HEADERS, _series_rows(study))}"


def study_html(study: Study) -> str:
    """The study line and its series, as escaped HTML."""
    head = (
        f"<p><strong>{html.escape(study.identity())}</strong>{html.escape(_listed_note(study))}<br>"
        f"Study UID {html.escape(study.study_uid)}</p>"
    )
    return head + (html_table(_SERIES_HEADERS, _series_rows(study)) if study.series else "")


def _summary(studies: StudySet) -> str:
    n = len(studies.studies)
    more = f"; the first {SHOWN} shown" if n > SHOWN else ""
    skipped = f", {len(studies.skipped)} files skipped" if studies.skipped else ""
    return f"{n} {'study' if n == 1 else 'studies'} in {studies.root}{skipped}{more}"


def study_set_markdown(studies: StudySet) -> str:
    """A one-line summary and a table of the studies (index, study line, modalities, counts, UID)."""
    return f"**{markdown_cell(_summary(studies))}**\n\n{markdown_table(_STUDY_HEADERS, _study_rows(studies))}"


def study_set_html(studies: StudySet) -> str:
    """The same as :func:`study_set_markdown`, as escaped HTML."""
    return f"<p><strong>{html.escape(_summary(studies))}</strong></p>" + html_table(
        _STUDY_HEADERS, _study_rows(studies)
    )
