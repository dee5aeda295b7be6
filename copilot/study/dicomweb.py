"""Studies on a DICOMweb server: QIDO-RS lists them, WADO-RS fetches only what is needed.

    studies = index_dicomweb("http://pacs:8042/dicom-web", query=StudyQuery(patient="P001"))
    fetch_instances([studies.studies[0].primary_instance()])

Rules:

- **Same model as a folder.** QIDO-RS lists the studies (with the query's filters) and their
  series; WADO-RS series metadata (headers only, never pixels) gives each instance's header,
  which goes through the folder indexer's own checks and record builder, then the same grouping.
  ``copilot studies URL --json`` therefore prints what ``copilot studies FOLDER --json`` prints
  for the same files. An object without pixels (an SR, a SEG) is skipped with its reason.
- **Only what a question needs is fetched.** A record's ``path`` is where WADO-RS puts it:
  ``<cache_dir>/dicomweb/<server>/<study>/<series>/<sop>.dcm`` (owner-only). Pixels are
  fetched on first use (:func:`fetch_instances`, or lazily by ``load_pixels``), in their stored
  transfer syntax, verified (the UIDs are those asked for; the file passes the folder indexer's
  checks) and kept: a verified copy is never fetched again. The mirror is protected by the write
  guard like a study folder: no output lands in it.
- **The server is only read** here; ``copilot push`` stores with STOW-RS (:meth:`DicomwebServer.store`).
- **Credentials** come from settings or the environment (``dicomweb_token`` for a bearer token,
  or ``dicomweb_username`` / ``dicomweb_password``), or from the URL's user info; they are
  never printed: every URL shown or stored is stripped of them, and error messages are built
  here, never copied from the HTTP library.
- **Failures are one line**: an unreachable server or a timeout (after the configured retries
  with exponential back-off), HTTP 401/403, and a study that disappears mid-fetch each raise a
  :class:`~copilot.errors.DicomwebError` subclass.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from copilot import outputs
from copilot.config import Settings, get_settings
from copilot.errors import (
    DicomwebAuthError,
    DicomwebError,
    DicomwebGoneError,
    DicomwebUnreachableError,
    NothingReadableError,
    UnreadableFileError,
)
from copilot.paths import private_dir
from copilot.study.model import InstanceRecord, SkippedFile, StudySet
from copilot.study.query import StudyQuery

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient
    from pydicom import Dataset

__all__ = [
    "DicomwebServer",
    "fetch_instances",
    "index_dicomweb",
    "is_dicomweb_url",
    "safe_url",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")

#: HTTP statuses retried with back-off (the server is busy or restarting).
RETRY_STATUSES = (408, 429, 502, 503, 504)
#: Parallel QIDO/metadata requests while listing.
LIST_WORKERS = 4
#: QIDO-RS page size, and the most pages read (200,000 studies).
PAGE = 200
MAX_PAGES = 1000
PIXEL_TAGS = ("7FE00010", "7FE00008", "7FE00009")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}

_lock = threading.Lock()
#: Credentials given in a URL's user info, by the URL without them: lazy fetches use them too.
_url_credentials: dict[str, tuple[str, str]] = {}
#: One lock per cached file, so two threads never fetch the same instance at once.
_fetch_locks: dict[str, threading.Lock] = {}


def is_dicomweb_url(text: str | os.PathLike[str]) -> bool:
    """True when ``text`` is an http(s) URL (a DICOMweb base URL) rather than a path."""
    return isinstance(text, str) and re.match(r"(?i)https?://", text) is not None


def _split(url: str) -> tuple[str, tuple[str, str] | None]:
    """(URL without user info, query or trailing slash; credentials from the user info)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise DicomwebError(f"not a DICOMweb URL: {safe_url(url)!r} (expected http(s)://host[:port]/path)")
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise DicomwebError(f"invalid port in {safe_url(url)!r}") from exc
    netloc = f"{host}:{port}" if port else host
    clean = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    creds = None
    if parts.username is not None:
        creds = (unquote(parts.username), unquote(parts.password or ""))
    return clean, creds


def safe_url(url: str) -> str:
    """``url`` with any user name and password removed (what may be printed or stored)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _safe_part(uid: str) -> str:
    """A UID as a file-name part: itself when it is a plain UID, else a digest."""
    if _UID.fullmatch(uid) and len(uid) <= 64:
        return uid
    return hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:32]


def _first(item: dict[str, Any], tag: str) -> str:
    """The first value of a DICOM JSON attribute as text ('' when absent or odd)."""
    entry = item.get(tag)
    values = entry.get("Value") if isinstance(entry, dict) else None
    value = values[0] if isinstance(values, list) and values else ""
    return value if isinstance(value, str) else ""


def _all_pages(search: Callable[[int], list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """Every result of a paged QIDO-RS search (``limit``/``offset``), each UID (``key``) once.

    Paging stops at a short page, and also at a page that brings nothing new: a server that
    ignores ``offset`` (Orthanc's plug-in does with some filters) would otherwise repeat its
    answer forever."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    for _page in range(MAX_PAGES):
        page = [item for item in search(offset) if isinstance(item, dict)]
        fresh = {_first(item, key): item for item in page if _first(item, key) not in found}
        found.update(fresh)
        if len(page) < PAGE or not fresh:
            break
        offset += len(page)
    else:
        log.warning("stopped listing after %d pages of %d", MAX_PAGES, PAGE)
    return list(found.values())


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url`` (the port spelled out when it is the default)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class DicomwebServer:
    """One DICOMweb service (``dicomweb-client`` over a ``requests`` session with the
    configured authentication, time limit and retries). Every call raises a one-line
    :class:`DicomwebError` subclass on failure."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.url, creds = _split(url)
        with _lock:
            if creds is not None:
                _url_credentials[self.url] = creds
            # Precedence: the URL's own credentials, then the settings, then credentials an
            # earlier URL of this server carried (so instances listed through it can be fetched).
            elif not (self.settings.dicomweb_token or self.settings.dicomweb_username):
                creds = _url_credentials.get(self.url)
        self._credentials = creds
        self._client: DICOMwebClient | None = None

    # -- plumbing -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """A short name of this server for its cache folder."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def cache_folder(self) -> Path:
        """Where this server's fetched instances are kept."""
        return self.settings.cache_dir / "dicomweb" / self.key

    @property
    def has_credentials(self) -> bool:
        """True when a token or a user name is configured for this server."""
        s = self.settings
        return bool(self._credentials or s.dicomweb_token or s.dicomweb_username)

    def _session(self) -> Any:
        import requests

        configured = self.url

        class SameServerSession(requests.Session):
            """Follows a redirect only within the configured server (scheme, host and port): a
            redirect elsewhere would re-send the body (an SR with the patient module) and the
            credentials to a host nobody configured, so it is refused with the reason."""

            def get_redirect_target(self, resp: Any) -> str | None:
                target: str | None = super().get_redirect_target(resp)
                if target is not None and _origin(urljoin(resp.url, target)) != _origin(resp.url):
                    elsewhere = urlsplit(urljoin(resp.url, target)).hostname or "another host"
                    raise DicomwebError(
                        f"{configured} redirected the request to {elsewhere}; not followed: "
                        "credentials and patient data go only to the configured server (check the URL)"
                    )
                return target

        s = self.settings
        session = SameServerSession()
        session.trust_env = True  # proxies and CA bundles from the environment
        if self._credentials is not None:
            session.auth = self._credentials
        elif s.dicomweb_token is not None:
            session.headers["Authorization"] = f"Bearer {s.dicomweb_token.get_secret_value()}"
        elif s.dicomweb_username:
            password = s.dicomweb_password.get_secret_value() if s.dicomweb_password else ""
            session.auth = (s.dicomweb_username, password)
        return session

    @property
    def client(self) -> DICOMwebClient:
        """The ``dicomweb-client`` client (created on first use)."""
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient

            timeout = self.settings.dicomweb_timeout_s
            client = DICOMwebClient(self.url, session=self._session(), timeout=(timeout, timeout))
            client.set_http_retry_params(retry=False)  # retried here (_do), with one debug line each
            self._client = client
        return self._client

    def _retryable(self, exc: BaseException, idempotent: bool) -> float | None:
        """Seconds to wait before trying again after ``exc``, or None when it is final. A
        request that may have reached the server (a store) is retried only when it could not
        connect at all."""
        import requests

        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            if exc.response.status_code not in RETRY_STATUSES or not idempotent:
                return None
            after = str(exc.response.headers.get("Retry-After", "")).strip()
            return min(float(after), 30.0) if after.isdigit() else 0.0
        if isinstance(exc, requests.ConnectTimeout):
            return 0.0
        if isinstance(exc, requests.ConnectionError) and (idempotent or "NewConnectionError" in str(exc)):
            return 0.0
        if isinstance(exc, requests.Timeout) and idempotent:
            return 0.0
        return None

    def _do(self, what: str, call: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run one request: retried with exponential back-off (``dicomweb_retries``,
        ``dicomweb_backoff_s``; a server's Retry-After is honoured up to 30 s), every failure
        turned into a one-line :class:`DicomwebError`."""
        retries = self.settings.dicomweb_retries
        for attempt in range(retries + 1):
            try:
                return call()
            except DicomwebError:
                raise
            except Exception as exc:
                wait = self._retryable(exc, idempotent) if attempt < retries else None
                if wait is None:
                    raise self._error(exc, what, attempt) from None
                wait = max(wait, self.settings.dicomweb_backoff_s * 2**attempt)
                log.debug(
                    "%s %s: %s; retry %d of %d in %.2fs",
                    self.url,
                    what,
                    type(exc).__name__,
                    attempt + 1,
                    retries,
                    wait,
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Turn every failure of the block into a one-line :class:`DicomwebError`."""
        try:
            yield
        except DicomwebError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def _error(self, exc: BaseException, what: str, retried: int = 0) -> DicomwebError:
        """The one-line error for ``exc`` (never the HTTP library's text, which may hold a URL
        with credentials); ``retried``: how many retries were made."""
        import requests

        s = self.settings
        tries = f" (after {retried} {'retry' if retried == 1 else 'retries'})" if retried else ""
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            if code == 401:
                hint = (
                    "check the credentials"
                    if self.has_credentials
                    else "set COPILOT_DICOMWEB_TOKEN, or COPILOT_DICOMWEB_USERNAME and _PASSWORD"
                )
                return DicomwebAuthError(f"{self.url} refused the credentials (HTTP 401) {what}; {hint}")
            if code == 403:
                return DicomwebAuthError(
                    f"{self.url} denied access (HTTP 403) {what}; these credentials may not do this"
                )
            if code in (404, 410):
                return DicomwebGoneError(f"not found on {self.url} (HTTP {code}) {what}")
            reason = re.sub(r"[^\w .,-]", "", str(exc.response.reason or ""))[:60]
            return DicomwebError(f"{self.url} answered HTTP {code} {reason}".rstrip() + f" {what}{tries}")
        if isinstance(exc, requests.Timeout):
            return DicomwebUnreachableError(
                f"{self.url} did not answer within {s.dicomweb_timeout_s:g}s {what}{tries}"
            )
        if isinstance(exc, requests.ConnectionError) and "read timed out" in str(exc).lower():
            return DicomwebUnreachableError(  # a read time-out after retries arrives wrapped
                f"{self.url} did not answer within {s.dicomweb_timeout_s:g}s {what}{tries}"
            )
        if isinstance(exc, requests.ConnectionError):
            text = str(exc)
            if isinstance(exc, requests.exceptions.SSLError):
                why = "TLS/certificate error"
            elif "refused" in text:
                why = "connection refused"
            elif "resolve" in text or "Name or service" in text or "getaddrinfo" in text:
                why = "host name not found"
            elif "timed out" in text.lower():
                why = "connection timed out"
            else:
                why = "connection failed"
            return DicomwebUnreachableError(
                f"cannot reach the DICOMweb server {self.url} {what}: {why}{tries}"
            )
        if isinstance(exc, requests.RequestException):
            return DicomwebError(f"request to {self.url} failed {what}: {type(exc).__name__}")
        log.debug("unexpected DICOMweb answer", exc_info=True)
        return DicomwebError(
            f"{self.url} sent an answer that is not valid DICOMweb {what} ({type(exc).__name__})"
        )

    # -- QIDO-RS / WADO-RS / STOW-RS -------------------------------------------------------
    def search_studies(self, query: StudyQuery | None = None) -> list[dict[str, Any]]:
        """QIDO-RS: the studies matching ``query`` (DICOM JSON), every page."""
        params = (query or StudyQuery()).qido()
        what = "while listing studies"
        return _all_pages(
            lambda offset: self._do(
                what, lambda: self.client.search_for_studies(search_filters=params, limit=PAGE, offset=offset)
            ),
            "0020000D",
        )

    def search_series(self, study_uid: str) -> list[dict[str, Any]]:
        """QIDO-RS: the series of one study (DICOM JSON)."""
        what = f"while listing the series of study {study_uid}"
        return _all_pages(
            lambda offset: self._do(
                what, lambda: self.client.search_for_series(study_uid, limit=PAGE, offset=offset)
            ),
            "0020000E",
        )

    def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS: every instance header of one series (DICOM JSON, no pixels)."""
        what = f"while reading the headers of series {series_uid} of study {study_uid}"
        found = self._do(what, lambda: self.client.retrieve_series_metadata(study_uid, series_uid))
        return [item for item in found if isinstance(item, dict)]

    def retrieve_instance(self, record: InstanceRecord) -> Dataset:
        """WADO-RS: one instance, in its stored transfer syntax."""
        what = f"while fetching instance {record.sop_uid} of study {record.study_uid}"
        try:
            return self._do(
                what,
                lambda: self.client.retrieve_instance(
                    record.study_uid,
                    record.series_uid,
                    record.sop_uid,
                    media_types=(("application/dicom", "*"),),
                ),
            )
        except DicomwebGoneError as exc:
            raise DicomwebGoneError(
                f"study {record.study_uid} is no longer complete on {self.url}: instance "
                f"{record.sop_uid} was not found (deleted or moved since it was listed); "
                "list the studies again"
            ) from exc

    def store(self, datasets: Sequence[Dataset]) -> Dataset:
        """STOW-RS: store ``datasets``; returns the server's response (ReferencedSOPSequence,
        FailedSOPSequence)."""
        what = f"while storing {len(datasets)} object(s)"
        return self._do(what, lambda: self.client.store_instances(list(datasets)), idempotent=False)

    def instance_url(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """The WADO-RS URL of one instance (without credentials)."""
        return f"{self.url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"

    def cache_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where one instance is kept once fetched."""
        return (
            self.cache_folder / _safe_part(study_uid) / _safe_part(series_uid) / f"{_safe_part(sop_uid)}.dcm"
        )


# -- listing --------------------------------------------------------------------------------
def _record_from_metadata(
    server: DicomwebServer, item: dict[str, Any], study_uid: str, series_uid: str, limit: int
) -> InstanceRecord | SkippedFile:
    """One instance header as a record, or the reason it is skipped (the folder's reasons)."""
    import pydicom
    from pydicom.uid import UID

    from copilot.study.header_values import build_record, image_geometry
    from copilot.study.rawvalues import HeaderReader

    sop_uid = _first(item, "00080018")
    where = server.instance_url(study_uid, series_uid, sop_uid or "?")
    try:
        ds = pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda _tag, _vr, _uri: None)
    except Exception as exc:  # hostile JSON: one skipped instance, never a failed listing
        return SkippedFile(path=where, reason=f"invalid DICOM JSON header: {type(exc).__name__}")
    h = HeaderReader(ds)
    sop_class = h.text("SOPClassUID")
    class_name = UID(sop_class).name if sop_class else "unknown SOP class"
    # Servers leave encapsulated (compressed) pixel data out of the metadata, so an instance
    # with image dimensions counts as an image; its file is checked in full once fetched.
    if not any(tag in item for tag in PIXEL_TAGS) and not (h.integer("Rows") and h.integer("Columns")):
        return SkippedFile(path=where, reason=f"no pixel data ({class_name})")
    missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not h.text(k)]
    if missing:
        return SkippedFile(path=where, reason=f"missing {', '.join(missing)}")
    if h.text("StudyInstanceUID") != study_uid or h.text("SeriesInstanceUID") != series_uid:
        return SkippedFile(path=where, reason="header names another study or series than the server listed")
    try:
        image_geometry(h, limit)
    except UnreadableFileError as exc:
        return SkippedFile(path=where, reason=exc.reason)
    syntax = h.text("TransferSyntaxUID") or h.text("AvailableTransferSyntaxUID")
    if syntax and syntax not in _NATIVE_SYNTAXES:
        from pydicom.pixels import get_decoder

        try:
            available = get_decoder(syntax).is_available
        except (NotImplementedError, ValueError, KeyError):
            available = False
        if not available:
            return SkippedFile(
                path=where, reason=f"unsupported transfer syntax {UID(syntax).name} (no decoder installed)"
            )
    path = server.cache_path(study_uid, series_uid, h.text("SOPInstanceUID"))
    return build_record(h, str(path), 0, 0, sop_class, syntax, remote=server.url)


def _list_study(
    server: DicomwebServer, study_uid: str, limit: int
) -> tuple[list[InstanceRecord], list[SkippedFile]]:
    records: list[InstanceRecord] = []
    skipped: list[SkippedFile] = []
    study_url = f"{server.url}/studies/{study_uid}"
    try:
        series = server.search_series(study_uid)
        for entry in series:
            series_uid = _first(entry, "0020000E")
            if not series_uid:
                skipped.append(SkippedFile(path=study_url, reason="a series without a SeriesInstanceUID"))
                continue
            for item in server.series_metadata(study_uid, series_uid):
                result = _record_from_metadata(server, item, study_uid, series_uid, limit)
                if isinstance(result, InstanceRecord):
                    records.append(result)
                else:
                    skipped.append(result)
    except DicomwebGoneError:
        skipped.append(SkippedFile(path=study_url, reason="deleted from the server while it was listed"))
    return records, skipped


def index_dicomweb(
    url: str,
    settings: Settings | None = None,
    *,
    query: StudyQuery | None = None,
    progress: ProgressCallback | None = None,
) -> StudySet:
    """List the studies of a DICOMweb server (QIDO-RS, then WADO-RS metadata; no pixels).

    Returns the same :class:`StudySet` as a folder of the same files, its ``root`` the base URL
    without credentials. Raises :class:`NothingReadableError` when an unfiltered server lists
    no image, and a :class:`DicomwebError` subclass when the server cannot be used.
    """
    from copilot.study.index import group_records

    server = DicomwebServer(url, settings)
    query = query or StudyQuery()
    limit = server.settings.max_decoded_mb * 2**20
    studies = server.search_studies(query)
    uids = list(dict.fromkeys(uid for uid in (_first(s, "0020000D") for s in studies) if uid))
    log.debug("%s: %d studies listed", server.url, len(uids))
    # Outputs never land in the mirror of a study, as in a study folder.
    outputs.protect(private_dir(server.cache_folder))
    records: list[InstanceRecord] = []
    skipped: list[SkippedFile] = []
    if progress:
        progress(0, len(uids))
    if uids:
        with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, len(uids))) as pool:
            for done, (found, bad) in enumerate(pool.map(lambda u: _list_study(server, u, limit), uids), 1):
                records.extend(found)
                skipped.extend(bad)
                if progress:
                    progress(done, len(uids))
    if not records and query.empty:
        detail = f" ({len(skipped)} object(s) skipped)" if skipped else ""
        raise NothingReadableError(f"{server.url}: the server lists no readable images{detail}")
    return query.apply(group_records(server.url, records, skipped))


# -- fetching -------------------------------------------------------------------------------
def _is_verified(path: Path, record: InstanceRecord) -> bool:
    """True when ``path`` holds a readable copy of ``record`` (its UIDs, a sound header)."""
    from copilot.study.header import read_dicom

    try:
        st = path.stat()
        found = read_dicom(str(path), st.st_size, st.st_mtime_ns, 2**62)
    except (OSError, UnreadableFileError):
        return False
    return (found.sop_uid, found.series_uid, found.study_uid) == (
        record.sop_uid,
        record.series_uid,
        record.study_uid,
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` owner-only, atomically (a temporary file renamed into place).

    The mirror is a study source, protected from outputs, so it is written here rather than
    through the write guard; nothing else writes into it."""
    private_dir(path.parent)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fetch_one(server: DicomwebServer, record: InstanceRecord) -> Path:
    from io import BytesIO

    from copilot.study.header import read_dicom

    path = Path(record.path)
    expected = server.cache_path(record.study_uid, record.series_uid, record.sop_uid)
    # Written only where a listing of this server puts it (the cache folder may differ between
    # the settings that listed it and these): <...>/dicomweb/<server>/<study>/<series>/<sop>.dcm
    if path.parts[-5:] != expected.parts[-5:] or ".." in path.parts:
        raise DicomwebError(f"instance {record.sop_uid}: its path is not in the mirror of {server.url}")
    ds = server.retrieve_instance(record)
    got = tuple(str(ds.get(k, "")) for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"))
    if got != (record.sop_uid, record.series_uid, record.study_uid):
        raise DicomwebError(
            f"{server.url} sent another instance than instance {record.sop_uid} of study {record.study_uid}"
        )
    buffer = BytesIO()
    with server._calling(f"while saving instance {record.sop_uid}"):
        ds.save_as(buffer, enforce_file_format=True)
    _write_private(path, buffer.getvalue())
    st = path.stat()
    limit = server.settings.max_decoded_mb * 2**20
    try:
        read_dicom(str(path), st.st_size, st.st_mtime_ns, limit)
    except UnreadableFileError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise DicomwebError(
            f"instance {record.sop_uid} from {server.url} is unusable: {exc.reason}"
        ) from None
    log.debug("fetched %s (%d bytes)", record.sop_uid, st.st_size)
    return path


def fetch_instances(
    records: Iterable[InstanceRecord],
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Make sure every remote record's file is in the cache (WADO-RS), verified; returns the
    local paths in order. Local files and already verified copies are not fetched; each
    instance is fetched once however often it is listed. Raises a :class:`DicomwebError`
    subclass (:class:`DicomwebGoneError` when the study was deleted since it was listed)."""
    settings = settings or get_settings()
    items = list(records)
    unique = list({r.path: r for r in items if r.remote}.values())
    servers: dict[str, DicomwebServer] = {}
    if progress and unique:
        progress(0, len(unique))
    for done, record in enumerate(unique, 1):
        path = Path(record.path)
        with _lock:
            file_lock = _fetch_locks.setdefault(str(path), threading.Lock())
        with file_lock:
            if not _is_verified(path, record):
                server = servers.get(record.remote)
                if server is None:
                    server = servers[record.remote] = DicomwebServer(record.remote, settings)
                _fetch_one(server, record)
        if progress:
            progress(done, len(unique))
    return [Path(r.path) for r in items]
