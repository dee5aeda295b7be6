"""The app's study list as studies are opened one by one (pure functions, no widgets).

A server's studies arrive listed (``study.opened`` is False); the app opens them one at a
time and swaps each opened study into the list it shows, so the tree, the filter and
"next study" all see the opened study from then on.
"""

from __future__ import annotations

from copilot.study.model import Study, StudySet
from copilot.study.query import StudyQuery

__all__ = ["keep_opened", "replace_study", "shown_with"]


def replace_study(study_set: StudySet, opened: Study) -> None:
    """Put ``opened`` in place of the study with its UID in ``study_set`` (in place: the tree
    and the app share the set); nothing happens when the set does not hold it."""
    for i, study in enumerate(study_set.studies):
        if study.study_uid == opened.study_uid:
            study_set.studies[i] = opened
            return


def keep_opened(fresh: StudySet, before: StudySet) -> StudySet:
    """``fresh`` (listed again) with the studies opened before in place of their listed
    copies, so listing again never closes the study the user is on."""
    opened = {s.study_uid: s for s in before.studies if s.opened}
    if not opened:
        return fresh
    studies = [s if s.opened else opened.get(s.study_uid, s) for s in fresh.studies]
    return fresh.model_copy(update={"studies": studies})


def shown_with(study_set: StudySet, chosen: Study, query: StudyQuery | None) -> StudySet:
    """The studies shown when one was chosen by key: ``query`` filters the others (the
    patient's priors, or the rest of a folder); the chosen study is always shown."""
    if query is None or query.empty:
        return study_set
    studies = [s for s in study_set.studies if s.study_uid == chosen.study_uid or query.matches(s)]
    return study_set.model_copy(update={"studies": studies})
