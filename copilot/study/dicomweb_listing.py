"""A DICOMweb server's studies: listed lazily, opened one at a time, selected directly.

    listed = list_dicomweb(url, query=StudyQuery(patient="P00*"))     # study-level QIDO only
    studies, study = select_dicomweb(url, "1.2.840...", date=None)    # one study (+ its priors)
    full = index_dicomweb(url)                                         # every study opened

The design: a :class:`~copilot.study.model.Study` is either *listed* (built from the
server's study-level QIDO-RS attributes; ``study.listing`` holds the counts and modalities
and ``series`` is empty) or *opened* (its series searched and their headers read with WADO-RS
metadata; the same model a folder gives). Nothing pretends: a listed study has no images
until it is opened, and :meth:`~copilot.study.model.Study.primary_instance` says so.

- **Listing reads study-level QIDO only**, paged with ``limit``/``offset``, the filters sent
  as QIDO parameters and re-checked here (:class:`~copilot.study.query.StudyQuery`). The
  cost is one request per 200 studies, whatever their size.
- **Selecting one study asks the server only for it**: its StudyInstanceUID, its
  AccessionNumber, or its PatientID (with a date when given), each one QIDO search; then its
  series and headers; then the same patient's other studies (study level only, for priors).
  The number of requests does not grow with the archive.
- **One bad study is that study's error**: a study whose series or headers answer HTTP 500
  or 403, malformed JSON, a web page, too much data, nothing in time or a dropped
  connection, or whose UID is not a DICOM UID (a path traversal, 200 characters), is skipped
  with its reason; the others are listed, answered and analysed. What concerns the whole
  server stops a listing: a failure of the study-level listing itself, credentials refused
  (HTTP 401) on any request, or every study failing for the same kind of reason (the server
  unreachable, or access denied, for all of them).
- **The copilot's own SR/SEG** found with a study are its ``results``, not images
  (:mod:`copilot.study.dicomweb_records`).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from copilot import outputs
from copilot.config import Settings
from copilot.errors import (
    DicomwebAuthError,
    DicomwebError,
    DicomwebForbiddenError,
    DicomwebUnreachableError,
    NothingReadableError,
    StudyError,
)
from copilot.paths import private_dir
from copilot.study.dicomweb_records import instance_from_metadata
from copilot.study.dicomweb_server import DicomwebServer, first_value, safe_part, valid_uid
from copilot.study.model import InstanceRecord, ResultObject, SkippedFile, Study, StudyListing, StudySet
from copilot.study.query import StudyQuery

__all__ = ["index_dicomweb", "list_dicomweb", "open_study", "select_dicomweb"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
#: Parallel studies opened while listing every study.
LIST_WORKERS = 4
#: Candidates shown when a selector matches several studies.
SHOWN = 5


def _count(item: dict[str, Any], tag: str) -> int | None:
    text = first_value(item, tag).strip()
    return int(text) if text.isdigit() else None


def study_from_qido(server: DicomwebServer, item: dict[str, Any]) -> Study | SkippedFile:
    """A listed study from its study-level QIDO attributes, or why it is skipped (a
    StudyInstanceUID that is not a DICOM UID never reaches a URL or a file name)."""
    uid = first_value(item, "0020000D")
    if not valid_uid(uid):
        shown = safe_part(uid) if uid else "(none)"
        return SkippedFile(
            path=f"{server.url}/studies/?",
            reason=f"a study whose StudyInstanceUID is not a DICOM UID (digest {shown}); not requested",
        )
    entry = item.get("00080061")
    values = entry.get("Value") if isinstance(entry, dict) else None
    modalities = [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []
    return Study(
        study_uid=uid,
        patient_id=first_value(item, "00100020"),
        patient_name=first_value(item, "00100010"),
        patient_age=first_value(item, "00101010"),
        patient_sex=first_value(item, "00100040"),
        study_date=first_value(item, "00080020"),
        description=first_value(item, "00081030"),
        listing=StudyListing(
            modalities=modalities,
            series=_count(item, "00201206"),
            instances=_count(item, "00201208"),
            accession_number=first_value(item, "00080050"),
        ),
    )


def _listed(server: DicomwebServer, items: list[dict[str, Any]]) -> tuple[list[Study], list[SkippedFile]]:
    studies: dict[str, Study] = {}
    skipped: list[SkippedFile] = []
    for item in items:
        found = study_from_qido(server, item)
        if isinstance(found, SkippedFile):
            skipped.append(found)
        else:
            studies.setdefault(found.study_uid, found)
    return list(studies.values()), skipped


def list_dicomweb(url: str, settings: Settings | None = None, *, query: StudyQuery | None = None) -> StudySet:
    """The server's studies matching ``query``, listed from study-level QIDO-RS only (paged;
    no series, no headers). Raises a :class:`DicomwebError` subclass when the server cannot
    be used."""
    server = DicomwebServer(url, settings)
    query = query or StudyQuery()
    studies, skipped = _listed(server, server.search_studies(query.qido()))
    log.debug("%s: %d studies listed", server.url, len(studies))
    return query.apply(StudySet(root=server.url, studies=studies, skipped=skipped))


def _server_wide(exc: DicomwebError) -> bool:
    """True for a failure of one study's request that concerns the whole server: credentials
    refused (HTTP 401). A 403, a timeout or a dropped connection is that study's."""
    return isinstance(exc, DicomwebAuthError) and not isinstance(exc, DicomwebForbiddenError)


def _all_failed(failures: list[DicomwebError | None]) -> DicomwebError | None:
    """The error to raise when every study failed for the same server-level kind of reason
    (unreachable, or access denied): the first one; None otherwise."""
    if not failures or any(f is None for f in failures):
        return None
    for kind in (DicomwebUnreachableError, DicomwebForbiddenError):
        if all(isinstance(f, kind) for f in failures):
            return failures[0]
    return None


def _read_study(
    server: DicomwebServer, study_uid: str, limit: int
) -> tuple[list[InstanceRecord], list[ResultObject], list[SkippedFile], DicomwebError | None]:
    """The records, copilot results and skipped objects of one study (series QIDO, then
    each series' headers), and the study's failure. A failure of this study is its one
    skipped entry (only :func:`_server_wide` ones are raised)."""
    records: list[InstanceRecord] = []
    results: list[ResultObject] = []
    skipped: list[SkippedFile] = []
    study_url = f"{server.url}/studies/{safe_part(study_uid)}"
    try:
        for entry in server.search_series(study_uid):
            series_uid = first_value(entry, "0020000E")
            if not valid_uid(series_uid):
                skipped.append(
                    SkippedFile(path=study_url, reason="a series whose SeriesInstanceUID is not a DICOM UID")
                )
                continue
            for item in server.series_metadata(study_uid, series_uid):
                found = instance_from_metadata(server, item, study_uid, series_uid, limit)
                if isinstance(found, InstanceRecord):
                    records.append(found)
                elif isinstance(found, ResultObject):
                    results.append(found)
                else:
                    skipped.append(found)
    except DicomwebError as exc:
        if _server_wide(exc):
            raise
        log.debug("study %s skipped: %s", study_uid, exc)
        return [], [], [SkippedFile(path=study_url, reason=str(exc))], exc
    return records, results, skipped, None


def _with_listing(opened: Study, listed: Study | None, results: list[ResultObject]) -> Study:
    update: dict[str, Any] = {"results": results}
    if listed is not None and not opened.description:
        update["description"] = listed.description
    return opened.model_copy(update=update)


def open_study(
    url: str, study: Study, settings: Settings | None = None
) -> tuple[Study | None, list[SkippedFile]]:
    """``study`` opened: its series and instance headers read (no pixels). Returns None and
    the reasons when it has no readable image (or failed), never raising for this study's
    own faults (HTTP 500, bad JSON, too large, timed out); an unreachable server or denied
    access, this study being every study asked for, raises its :class:`DicomwebError`."""
    from copilot.study.index import group_records

    server = DicomwebServer(url, settings)
    outputs.protect(private_dir(server.cache_folder))  # outputs never land in the mirror
    limit = server.settings.max_decoded_mb * 2**20
    records, results, skipped, failed = _read_study(server, study.study_uid, limit)
    if (every := _all_failed([failed])) is not None:
        raise every  # the one study asked for met an unreachable server or a refusal
    grouped = group_records(server.url, records, skipped)
    if not grouped.studies:
        return None, grouped.skipped
    return _with_listing(grouped.studies[0], study, results), grouped.skipped


def index_dicomweb(
    url: str,
    settings: Settings | None = None,
    *,
    query: StudyQuery | None = None,
    progress: ProgressCallback | None = None,
) -> StudySet:
    """Every study of the server matching ``query``, opened (study-level QIDO, then each
    study's series and headers; no pixels): the same :class:`StudySet` as a folder of the
    same files, its ``root`` the base URL without credentials. A study that fails is skipped
    with its reason. Raises :class:`NothingReadableError` when an unfiltered server lists no
    image, and a :class:`DicomwebError` subclass when the server cannot be used."""
    from copilot.study.index import group_records

    server = DicomwebServer(url, settings)
    query = query or StudyQuery()
    listed = list_dicomweb(url, server.settings, query=query)
    outputs.protect(private_dir(server.cache_folder))
    limit = server.settings.max_decoded_mb * 2**20
    uids = [s.study_uid for s in listed.studies]
    records: list[InstanceRecord] = []
    results: dict[str, list[ResultObject]] = {}
    skipped: list[SkippedFile] = list(listed.skipped)
    failures: list[DicomwebError | None] = []
    if progress:
        progress(0, len(uids))
    if uids:
        with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, len(uids))) as pool:
            read = pool.map(lambda uid: (uid, _read_study(server, uid, limit)), uids)
            for done, (uid, (found, made, bad, failed)) in enumerate(read, 1):
                records.extend(found)
                results[uid] = made
                skipped.extend(bad)
                failures.append(failed)
                if progress:
                    progress(done, len(uids))
    if (every := _all_failed(failures)) is not None:
        raise every  # the same failure for every study: the server's, said once
    if not records and query.empty:
        detail = f" ({len(skipped)} object(s) skipped)" if skipped else ""
        raise NothingReadableError(f"{server.url}: the server lists no readable images{detail}")
    grouped = group_records(server.url, records, skipped)
    by_uid = {s.study_uid: s for s in listed.studies}
    studies = [
        _with_listing(s, by_uid.get(s.study_uid), results.get(s.study_uid, [])) for s in grouped.studies
    ]
    return query.apply(grouped.model_copy(update={"studies": studies}))


def _accession(study: Study) -> str:
    return study.listing.accession_number if study.listing is not None else ""


def _candidates(server: DicomwebServer, key: str, date: str | None) -> dict[str, tuple[Study, list[str]]]:
    """The studies ``key`` names on the server, each with how it matched: one QIDO search
    per reading (StudyInstanceUID, AccessionNumber, PatientID), re-checked here."""
    when = StudyQuery(date=date) if date else None
    readings: list[tuple[str, str, Callable[[Study], bool]]] = []
    if valid_uid(key):
        readings.append(("StudyInstanceUID", "StudyInstanceUID", lambda s: s.study_uid == key))
    readings.append(("AccessionNumber", "AccessionNumber", lambda s: _accession(s) == key))
    readings.append(("patient ID", "PatientID", lambda s: fnmatch.fnmatchcase(s.patient_id, key)))
    matched: dict[str, tuple[Study, list[str]]] = {}
    for how, attribute, test in readings:
        params = {attribute: key, "fuzzymatching": "false"}
        if when is not None:
            params.update(when.qido())
        studies, _bad = _listed(server, server.search_studies(params, every_page=False))
        for study in studies:
            if test(study) and (when is None or when.matches(study)):
                matched.setdefault(study.study_uid, (study, []))[1].append(how)
    return matched


def select_dicomweb(
    url: str, key: str, settings: Settings | None = None, *, date: str | None = None
) -> tuple[StudySet, Study]:
    """The one study ``key`` names on the server (its StudyInstanceUID, AccessionNumber or
    PatientID, with ``date`` a DICOM date or range), opened, in a set with the same
    patient's other studies (listed only: priors). Asks the server only for these. Raises
    :class:`StudyError` when ``key`` names no study or several, or the study has no image."""
    server = DicomwebServer(url, settings)
    matched = _candidates(server, key, date)
    on_date = f" on {date}" if date else ""
    if not matched:
        raise StudyError(
            f"no study on {server.url} has the StudyInstanceUID, AccessionNumber or patient ID "
            f"{key!r}{on_date} (see 'copilot studies URL')"
        )
    if len(matched) > 1:
        listed = "; ".join(
            f"{s.study_uid} (patient {s.patient_id or '?'}, {s.study_date or 'no date'}, "
            f"{s.description or 'no description'}: {' and '.join(hows)})"
            for s, hows in list(matched.values())[:SHOWN]
        )
        more = " and more" if len(matched) > SHOWN else ""
        raise StudyError(
            f"--study {key!r} matches {len(matched)} studies{on_date}: {listed}{more}; "
            "give the StudyInstanceUID, or --date"
        )
    listed_study = next(iter(matched.values()))[0]
    study, skipped = open_study(server.url, listed_study, server.settings)
    if study is None:
        reasons = "; ".join(dict.fromkeys(k.reason for k in skipped)) or "no image"
        raise StudyError(f"study {listed_study.study_uid} on {server.url} has no readable image: {reasons}")
    others: list[Study] = []
    if study.patient_id.strip():
        same, _bad = _listed(
            server, server.search_studies({"PatientID": study.patient_id, "fuzzymatching": "false"})
        )
        others = [s for s in same if s.study_uid != study.study_uid and s.patient_id == study.patient_id]
    return StudySet(root=server.url, studies=[study, *others], skipped=skipped), study
