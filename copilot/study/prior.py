"""The prior: the same patient's most recent earlier comparable study, and its image.

The rules (what :func:`find_prior` does):

- **Same patient** by PatientID, and by IssuerOfPatientID where both studies state one (two
  hospitals may give the same number to two people); never by name. A study without a
  PatientID has no prior.
- **Earlier**: StudyDate (and StudyTime) before the current study's; an undated study cannot be
  ordered and is never a prior.
- **Comparable**: an image of the same modality, and of the same body part where both state it.
- **Preferred**: a study holding an image of the current image's view class (frontal: PA/AP or
  unstated; lateral), the most recent such; else the most recent comparable study of any view
  (a comparison tool then says the views differ). Within the study, the image of the same view
  class, frontal first.

The result says which prior was used, or why there is none, in words for the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from copilot.study.model import InstanceRecord, Study
from copilot.study.views import FRONTAL, view_of

__all__ = ["PriorStudy", "find_prior", "iso_date", "priors_of", "same_patient", "view_class"]

log = logging.getLogger(__name__)

ViewClass = Literal["frontal", "lateral", "other"]


def view_class(image: InstanceRecord | None) -> ViewClass:
    """The image's view class, from its view as :func:`copilot.study.views.view_of` reads it:
    ``frontal`` (PA, AP, frontal, or unknown: most films are frontal; also no image),
    ``lateral`` (lateral or decubitus) or ``other`` (oblique)."""
    view = view_of(image).view if image is not None else "unknown"
    if view in FRONTAL or view == "unknown":
        return "frontal"
    return "lateral" if view in ("lateral", "decubitus") else "other"


def iso_date(value: str) -> str:
    """A DICOM DA value as ``YYYY-MM-DD`` ("" when it is not one)."""
    value = value.strip()
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else ""


class PriorStudy(BaseModel):
    """The prior chosen for a study, or why there is none (``study`` None)."""

    model_config = {"frozen": True}

    study: Study | None = None
    instance: InstanceRecord | None = None
    reason: str = ""
    """Why there is no prior, in words for the answer ("" when there is one)."""

    @property
    def date(self) -> str:
        """The prior's StudyDate as ``YYYY-MM-DD`` ("" when there is no prior or no date)."""
        return iso_date(self.study.study_date) if self.study is not None else ""

    def describe(self) -> str:
        """One line naming the prior for the answer: date, description and view (no identifiers
        beyond the date)."""
        if self.study is None or self.instance is None:
            return self.reason
        what = self.study.description.strip() or self.instance.modality or "study"
        view = self.instance.view or "view not stated"
        return f"the prior study of {self.date or 'unknown date'} ({what}, {view})"


def _issuer(study: Study) -> str:
    return next((i.patient_id_issuer.strip() for i in study.instances() if i.patient_id_issuer.strip()), "")


def _when(study: Study) -> str:
    return study.study_date.strip() + (study.series[0].first.study_time.strip() if study.series else "")


def same_patient(study: Study, other: Study) -> bool:
    """True when ``other`` is the same patient: PatientID equal, and the issuer too where both state one."""
    pid = study.patient_id.strip()
    if not pid or other.patient_id.strip() != pid:
        return False
    mine, theirs = _issuer(study), _issuer(other)
    return not (mine and theirs and mine != theirs)


def _comparable(current: InstanceRecord, candidate: InstanceRecord) -> bool:
    if candidate.modality != current.modality:
        return False
    return not (current.body_part and candidate.body_part and current.body_part != candidate.body_part)


def _best_image(current: InstanceRecord, study: Study) -> InstanceRecord | None:
    """The study's image to compare with: comparable, same view class first, then frontal."""
    images = [i for i in study.instances() if _comparable(current, i)]
    if not images:
        return None
    wanted = view_class(current)
    order = {wanted: 0, "frontal": 1, "lateral": 2, "other": 3}
    return min(images, key=lambda i: order.get(view_class(i), 4))


def find_prior(study: Study, others: tuple[Study, ...] | None) -> PriorStudy:
    """The prior for ``study`` among ``others`` (None: only the study was opened); the rules
    are the module docstring's."""
    if others is None:
        return PriorStudy(reason="only this study was opened, so there is no prior to compare with")
    current = study.primary_instance()
    if not study.patient_id.strip():
        return PriorStudy(reason="this study has no patient ID, so no prior can be matched to it")
    mine = _when(study)
    patient = [o for o in others if o.study_uid != study.study_uid and same_patient(study, o)]
    if not patient:
        return PriorStudy(reason="no other study of this patient is available")
    earlier = [o for o in patient if o.study_date.strip() and mine and _when(o) < mine]
    if not earlier:
        many = "study is" if len(patient) == 1 else "studies are"
        return PriorStudy(reason=f"none of this patient's {len(patient)} other {many} earlier than this one")
    chosen: list[tuple[int, str, Study, InstanceRecord]] = []
    for other in earlier:
        image = _best_image(current, other) if other.series else None
        if image is not None:
            same_view = view_class(image) == view_class(current)
            chosen.append((int(same_view), _when(other), other, image))
    if not chosen:
        modality = current.modality or "this modality"
        return PriorStudy(
            reason=f"no earlier {modality} study of this patient of the same body part is available"
        )
    _, _, prior, image = max(chosen, key=lambda c: (c[0], c[1]))
    log.debug("prior for %s: %s (%s)", study.study_uid, prior.study_uid, image.view or "no view")
    return PriorStudy(study=prior, instance=image)


def priors_of(studies: Sequence[Study]) -> dict[str, PriorStudy]:
    """Each study's prior among ``studies`` (what :func:`find_prior` chooses among all the
    others), by StudyInstanceUID: the priors of a folder analysed in bulk. Studies are grouped by
    PatientID first, so the work grows with the studies of each patient, not their square."""
    by_patient: dict[str, list[Study]] = {}
    for study in studies:
        by_patient.setdefault(study.patient_id.strip(), []).append(study)
    return {s.study_uid: find_prior(s, tuple(by_patient[s.patient_id.strip()])) for s in studies}
