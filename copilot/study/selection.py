"""Choosing one study of an indexed folder from what the user typed (``--study``).

A server is asked for the study directly instead
(:func:`~copilot.study.dicomweb_listing.select_dicomweb`); a folder is indexed (with its
cache) and the study chosen here.
"""

from __future__ import annotations

from pathlib import Path

from copilot.study.model import Study, StudySet

__all__ = ["choose_study"]


def choose_study(studies: StudySet, key: str) -> Study:
    """The one study ``key`` names: its UID, a UID prefix, its patient ID or a sub-folder of the
    indexed folder (``p1`` or ``p1/study2``). An exact UID wins; otherwise every study any
    reading matches is a candidate, and more than one is refused, saying which matched how."""
    from copilot.errors import StudyError

    exact = [s for s in studies.studies if s.study_uid == key]
    if exact:
        return exact[0]
    root = Path(studies.root)
    parts = Path(key).parts

    def in_folder(study: Study) -> bool:
        for inst in study.instances():
            try:
                rel = Path(inst.path).relative_to(root).parts[:-1]
            except ValueError:
                continue
            if parts and any(rel[i : i + len(parts)] == parts for i in range(len(rel))):
                return True
        return False

    readings = (
        ("UID prefix", lambda s: s.study_uid.startswith(key)),
        ("patient ID", lambda s: s.patient_id == key),
        ("sub-folder", in_folder),
    )
    matched: dict[str, tuple[Study, list[str]]] = {}
    for how, test in readings:
        for s in studies.studies:
            if test(s):
                matched.setdefault(s.study_uid, (s, []))[1].append(how)
    if len(matched) == 1:
        return next(iter(matched.values()))[0]
    if not matched:
        raise StudyError(
            f"no study in {studies.root} has the UID, UID prefix, patient ID or sub-folder {key!r} "
            "(see 'copilot studies PATH')"
        )
    listed = "; ".join(
        f"{s.study_uid} (patient {s.patient_id or '?'}, {s.study_date or 'no date'}, "
        f"{s.description or 'no description'}: {' and '.join(hows)})"
        for s, hows in list(matched.values())[:5]
    )
    more = f" and {len(matched) - 5} more" if len(matched) > 5 else ""
    raise StudyError(
        f"--study {key!r} matches {len(matched)} studies: {listed}{more}; give a longer UID prefix"
    )
