"""Which images of a study the viewer shows side by side, and how each pane is labelled (no
Textual here).

A projection study with several views (a PA and a lateral) is read as a set: the viewer shows
the image the user chose (the *lead*, which the window, zoom and overlay keys act on) and, beside
it, the first image of each other view group, frontal views first, at most
:data:`MAX_VIEW_PANES` panes in all. Views come from :mod:`copilot.study.views`, the reading the
tools use, so the pane labels say what the answer says. A CT or MR slice has no view: it is
shown alone.
"""

from __future__ import annotations

from copilot.study.model import InstanceRecord, Study
from copilot.study.views import PROJECTION_MODALITIES, study_views, view_of

__all__ = ["MAX_VIEW_PANES", "pane_label", "view_panes"]

#: At most this many views side by side (beyond three a pane is too narrow to read).
MAX_VIEW_PANES = 3

_LABELS = {"frontal": "FRONTAL", "unknown": "VIEW ?"}


def pane_label(view: str) -> str:
    """A pane's label: ``PA``, ``AP``, ``LATERAL``, ``FRONTAL`` (PA/AP not stated), ``VIEW ?``."""
    return _LABELS.get(view, view.upper())


def view_panes(
    study: Study, lead: InstanceRecord, limit: int = MAX_VIEW_PANES
) -> list[tuple[str, InstanceRecord]]:
    """(label, image) of each pane, the lead image first, then the first image of every other
    view group of the study in reading order (frontal first), at most ``limit`` in all. A lead
    that is not a projection image, or a study of one view, gives the lead alone."""
    if lead.modality.upper() not in PROJECTION_MODALITIES or lead.frames > 1:
        return [("", lead)]
    lead_view = view_of(lead).view
    panes = [(pane_label(lead_view), lead)]
    seen = {lead_view}
    for image in study_views(study):
        if len(panes) >= limit:
            break
        if image.view in seen or image.instance.sop_uid == lead.sop_uid:
            continue
        seen.add(image.view)
        panes.append((pane_label(image.view), image.instance))
    if len(panes) == 1:
        return [("", lead)]
    return panes
