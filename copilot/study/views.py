"""A study's projection images grouped by view (PA, AP, lateral, decubitus...), and which of
them a tool reads.

An image's view comes from its header, in order of trust:

1. ``ViewPosition`` (DICOM defined terms PA, AP, LL, RL, RLD, LLD, RLO, LLO, and common
   vendor spellings such as ``LAT`` or ``LATERAL``);
2. ``PatientOrientation``: a row direction across the body (L or R) with the column toward the
   feet or head is a frontal image whose PA/AP is not stated (``frontal``); a row direction
   front to back (A or P) is a lateral;
3. the words of ``SeriesDescription`` and ``ProtocolName`` ("PA", "LAT", "DECUBITUS"...),
   used only when they name exactly one view ("CHEST PA LAT" names two and decides nothing).

``ImageLaterality`` says which side of a paired organ an image shows, not the projection, so it
does not decide a view. The study description is not used: "PA AND LATERAL" describes the study,
not either image. The pixels are not read. When the header is silent the view is ``unknown``.
Header text is data: it is matched against fixed words and never shown to a model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from copilot.study.model import InstanceRecord, Study

__all__ = [
    "FRONTAL",
    "MAX_VIEW_IMAGES",
    "PROJECTION_MODALITIES",
    "VIEWS",
    "View",
    "ViewedImage",
    "accepts",
    "images_for",
    "study_views",
    "view_of",
    "view_words",
]

log = logging.getLogger(__name__)

#: A projection image's view; ``frontal`` is a frontal image whose PA/AP the header does not say.
View = Literal["PA", "AP", "frontal", "lateral", "decubitus", "oblique", "unknown"]
#: Every view, in the order a study's images are read (frontal first).
VIEWS: tuple[View, ...] = get_args(View)
#: The frontal views: a tool accepting PA or AP also accepts an image known only to be frontal.
FRONTAL: tuple[View, ...] = ("PA", "AP", "frontal")
#: Modalities whose images are projections with a view (a CT or MR slice has none).
PROJECTION_MODALITIES = frozenset({"DX", "CR", "RF", "OT", "XA", ""})
#: At most this many images of a study are given to one tool (a study of repeats is not read
#: twenty times); the frontal views come first.
MAX_VIEW_IMAGES = 4

_POSITION: dict[str, View] = {
    "PA": "PA",
    "AP": "AP",
    "LL": "lateral",
    "RL": "lateral",
    "LAT": "lateral",
    "LATERAL": "lateral",
    "LATERALE": "lateral",
    "RLD": "decubitus",
    "LLD": "decubitus",
    "DECUBITUS": "decubitus",
    "RLO": "oblique",
    "LLO": "oblique",
    "RAO": "oblique",
    "LAO": "oblique",
    "RPO": "oblique",
    "LPO": "oblique",
    "OBLIQUE": "oblique",
}
#: Words of a series description or protocol name, decubitus first ("LEFT LATERAL DECUBITUS").
_WORDS: tuple[tuple[View, re.Pattern[str]], ...] = (
    ("decubitus", re.compile(r"\bDECUB(?:ITUS)?\b|\b[LR]LD\b")),
    ("lateral", re.compile(r"\bLAT(?:ERAL)?\b|\bLL\b|\bRL\b")),
    ("oblique", re.compile(r"\bOBL(?:IQUE)?\b|\b[RL][AP]O\b")),
    ("PA", re.compile(r"\bP-?A\b|\bPOSTERO-?ANTERIOR\b")),
    ("AP", re.compile(r"\bA-?P\b|\bANTERO-?POSTERIOR\b")),
)
_WORDS_TEXT = {
    "PA": "PA",
    "AP": "AP",
    "frontal": "frontal image",
    "lateral": "lateral",
    "decubitus": "decubitus",
    "oblique": "oblique",
    "unknown": "image of unknown view",
}


class ViewedImage(BaseModel):
    """One image of a study with its view and where the view came from."""

    model_config = ConfigDict(frozen=True)

    instance: InstanceRecord
    view: View
    source: str = ""
    """Which header element decided the view ('' when none did)."""


def _from_position(value: str) -> View | None:
    return _POSITION.get(value.strip().upper().replace(" ", ""))


def _from_orientation(value: str) -> View | None:
    parts = [p.strip().upper() for p in value.replace("/", "\\").split("\\")]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    row, column = parts[0][0], parts[1][0]
    if row in "LR" and column in "FH":
        return "frontal"
    if row in "AP" and column in "FH":
        return "lateral"
    return None


def _from_words(text: str) -> View | None:
    upper = text.upper()
    found = [view for view, pattern in _WORDS if pattern.search(upper)]
    if "decubitus" in found:  # "left lateral decubitus" is a decubitus, not a lateral
        found = [v for v in found if v != "lateral"]
    return found[0] if len(found) == 1 else None


def view_of(instance: InstanceRecord) -> ViewedImage:
    """The view of one image, from its header (the rules are in the module docstring)."""
    position = _from_position(instance.view) if instance.view else None
    if position is not None:
        return ViewedImage(instance=instance, view=position, source="ViewPosition")
    oriented = _from_orientation(instance.patient_orientation) if instance.patient_orientation else None
    if oriented is not None:
        return ViewedImage(instance=instance, view=oriented, source="PatientOrientation")
    for element, text in (
        ("SeriesDescription", instance.series_description),
        ("ProtocolName", instance.protocol_name),
    ):
        worded = _from_words(text) if text else None
        if worded is not None:
            return ViewedImage(instance=instance, view=worded, source=element)
    return ViewedImage(instance=instance, view="unknown")


def view_words(view: str) -> str:
    """How a view is named in an answer ('PA', 'lateral', 'frontal image')."""
    return _WORDS_TEXT.get(view, view)


def study_views(study: Study) -> list[ViewedImage]:
    """The study's projection images with their views, frontal first (then in series order);
    CT/MR slices and multi-frame objects have no view and are left out."""
    images = [
        view_of(inst)
        for inst in study.instances()
        if inst.modality.upper() in PROJECTION_MODALITIES and inst.frames <= 1
    ]
    rank = {v: i for i, v in enumerate(VIEWS)}
    return sorted(images, key=lambda image: rank[image.view])  # stable: series order kept


def accepts(declared: Iterable[str], view: str) -> bool:
    """Whether a tool declaring ``declared`` views reads an image of ``view`` (one declaring
    PA or AP also reads an image known only to be ``frontal``)."""
    wanted = set(declared)
    if view == "frontal":
        return bool(wanted & set(FRONTAL))
    return view in wanted


def images_for(declared: tuple[str, ...], study: Study) -> list[ViewedImage]:
    """The images a tool declaring ``declared`` views reads in ``study``.

    A tool that declares none reads the study's primary image (what every tool did before views
    were declared). One that declares views reads every image of an accepted view, frontal
    first, at most :data:`MAX_VIEW_IMAGES`; when there is none it reads the primary image if
    the header is silent about its view, and nothing (an empty list) when the study's images
    are all of views it does not read.
    """
    primary = view_of(study.primary_instance())
    if not declared:
        return [primary]
    chosen = [image for image in study_views(study) if accepts(declared, image.view)]
    if len(chosen) > MAX_VIEW_IMAGES:
        log.info("%d images of accepted views; the first %d are read", len(chosen), MAX_VIEW_IMAGES)
    if chosen:
        return chosen[:MAX_VIEW_IMAGES]
    return [primary] if primary.view == "unknown" else []
