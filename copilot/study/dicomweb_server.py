"""One DICOMweb server: its session, credentials, limits and one-line errors.

    server = DicomwebServer("http://pacs:8042/dicom-web")
    server.search_studies({"PatientID": "P00*"})      # QIDO-RS, DICOM JSON
    server.series_metadata(study_uid, series_uid)      # WADO-RS headers, no pixels

Rules:

- **Every call has a total deadline and a size cap** (:mod:`copilot.study.dicomweb_http`):
  ``dicomweb_deadline_s`` for a search, a series' headers or a store (retries included: a
  retry is made only while time is left), plus the time to move the expected bytes of an
  instance at :data:`MIN_BYTES_PER_S`; a JSON answer is capped at :data:`MAX_JSON_BYTES`,
  an instance at its expected size (from its header) plus a margin, within
  ``max_decoded_mb``. ``dicomweb_timeout_s`` still limits each connect and read.
- **UIDs go into a URL only when they are DICOM UIDs** (digits and dots, at most 64
  characters; :func:`valid_uid`); anything else is refused before a request is made, and
  never becomes a file name either (:func:`safe_part`).
- **Query values are percent-encoded except the wildcards** ``*`` and ``?`` and the list
  separator ``,`` (:func:`query_string`): Orthanc's plug-in matches ``%2A`` literally.
- **Credentials** come from settings or the environment (``dicomweb_token`` for a bearer
  token, or ``dicomweb_username`` / ``dicomweb_password``), or from the URL's user info; they
  are never printed: every URL shown or stored is stripped of them, and error messages are
  built here, never copied from the HTTP library. Redirects are followed only within the
  configured server.
- **Failures are one line naming the reason and the fix**: an unreachable PACS ("cannot reach
  PACS at URL: connection refused; is the server running and the URL right?"), an untrusted
  TLS certificate, a deadline passed (:class:`~copilot.errors.DicomwebTimeoutError`), a web
  page instead of DICOM JSON (a login page), an answer over its cap, HTTP 401/403/404 and
  other statuses each raise a :class:`~copilot.errors.DicomwebError` subclass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from copilot.config import Settings, get_settings
from copilot.errors import (
    DicomwebAuthError,
    DicomwebError,
    DicomwebForbiddenError,
    DicomwebGoneError,
    DicomwebTimeoutError,
    DicomwebUnreachableError,
)
from copilot.study.model import InstanceRecord

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient
    from pydicom import Dataset

__all__ = [
    "MAX_JSON_BYTES",
    "DicomwebServer",
    "is_dicomweb_url",
    "query_string",
    "safe_part",
    "safe_url",
    "valid_uid",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses retried with back-off (the server is busy or restarting).
RETRY_STATUSES = (408, 429, 502, 503, 504)
#: QIDO-RS page size, and the most pages read (200,000 studies).
PAGE = 200
MAX_PAGES = 1000
#: The largest DICOM JSON answer read (a search page, a series' headers).
MAX_JSON_BYTES = 64 * 2**20
#: The slowest transfer an instance fetch is given time for (its deadline grows with its size).
MIN_BYTES_PER_S = 4 * 2**20
#: What an instance may exceed its pixel data's size by (header, multipart framing).
INSTANCE_MARGIN = 16 * 2**20
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
#: Study-level attributes asked for beyond the defaults: description, age, sex, counts.
STUDY_FIELDS = "00081030,00101010,00100040,00080061,00201206,00201208,00080050"

_lock = threading.Lock()
#: Credentials given in a URL's user info, by the URL without them: lazy fetches use them too.
_url_credentials: dict[str, tuple[str, str]] = {}


def is_dicomweb_url(text: str | os.PathLike[str]) -> bool:
    """True when ``text`` is an http(s) URL (a DICOMweb base URL) rather than a path."""
    return isinstance(text, str) and re.match(r"(?i)https?://", text) is not None


def valid_uid(uid: str) -> bool:
    """True when ``uid`` is a DICOM UID (digits and dots, at most 64 characters): the only
    values put into a URL path or a file name."""
    return len(uid) <= 64 and _UID.fullmatch(uid) is not None


def safe_part(uid: str) -> str:
    """A UID as a file-name part: itself when it is a plain UID, else a digest."""
    if valid_uid(uid):
        return uid
    return hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:32]


def query_string(params: dict[str, str] | None) -> str:
    """``?k=v&...`` with every value percent-encoded except the wildcards ``*`` and ``?`` and
    the list separator ``,`` (empty when there are no parameters)."""
    if not params:
        return ""
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='*?,')}" for k, v in params.items())


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


def first_value(item: dict[str, Any], tag: str) -> str:
    """The first value of a DICOM JSON attribute as text ('' when absent or odd; a person
    name's alphabetic form)."""
    entry = item.get(tag)
    values = entry.get("Value") if isinstance(entry, dict) else None
    value = values[0] if isinstance(values, list) and values else ""
    if isinstance(value, dict):
        value = value.get("Alphabetic", "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) else ""


def all_pages(search: Callable[[int], list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """Every result of a paged QIDO-RS search (``limit``/``offset``), each UID (``key``) once.

    Paging stops at a short page, and also at a page that brings nothing new: a server that
    ignores ``offset`` (Orthanc's plug-in does with some filters) would otherwise repeat its
    answer forever."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    for _page in range(MAX_PAGES):
        page = search(offset)
        fresh = {first_value(item, key): item for item in page if first_value(item, key) not in found}
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


def expected_bytes(record: InstanceRecord) -> int:
    """The size of an instance's pixel data, from its header (for its deadline and cap)."""
    bits = max(record.bits_allocated, 8)
    return record.rows * record.columns * max(record.frames, 1) * max(record.samples_per_pixel, 1) * bits // 8


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
        self._session_obj: Any = None

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

        from copilot.study.dicomweb_http import BoundedAdapter

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
        for prefix in ("http://", "https://"):
            session.mount(prefix, BoundedAdapter())
        return session

    @property
    def session(self) -> Any:
        """The ``requests`` session of this server (shared with :attr:`client`)."""
        if self._session_obj is None:
            self._session_obj = self._session()
        return self._session_obj

    @property
    def client(self) -> DICOMwebClient:
        """The ``dicomweb-client`` client (created on first use)."""
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient

            timeout = self.settings.dicomweb_timeout_s
            client = DICOMwebClient(self.url, session=self.session, timeout=(timeout, timeout))
            client.set_http_retry_params(retry=False)  # retried here (_do), with one debug line each
            self._client = client
        return self._client

    def _retryable(self, exc: BaseException, idempotent: bool) -> float | None:
        """Seconds to wait before trying again after ``exc``, or None when it is final. A
        request that may have reached the server (a store) is retried only when it could not
        connect at all."""
        import requests

        from copilot.study.dicomweb_http import DeadlineExceeded, ResponseTooLarge, WebPageAnswer

        if isinstance(exc, DeadlineExceeded | ResponseTooLarge | WebPageAnswer):
            return None
        if isinstance(exc, requests.exceptions.SSLError):
            return None
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

    def _do(
        self,
        what: str,
        call: Callable[[], T],
        *,
        idempotent: bool = True,
        seconds: float | None = None,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> T:
        """Run one call under a total deadline (``seconds``, default ``dicomweb_deadline_s``)
        and a size cap: retried with exponential back-off (``dicomweb_retries``,
        ``dicomweb_backoff_s``; a server's Retry-After is honoured up to 30 s) while time is
        left, every failure turned into a one-line :class:`DicomwebError`."""
        from copilot.study.dicomweb_http import call_limits

        budget = self.settings.dicomweb_deadline_s if seconds is None else seconds
        deadline = time.monotonic() + budget
        retries = self.settings.dicomweb_retries
        for attempt in range(retries + 1):
            try:
                with call_limits(deadline, max_bytes):
                    return call()
            except DicomwebError:
                raise
            except Exception as exc:
                wait = self._retryable(exc, idempotent) if attempt < retries else None
                if wait is not None:
                    wait = max(wait, self.settings.dicomweb_backoff_s * 2**attempt)
                    if time.monotonic() + wait >= deadline:
                        wait = None
                if wait is None:
                    raise self._error(exc, what, attempt, budget=budget, max_bytes=max_bytes) from None
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
    def calling(self, what: str) -> Iterator[None]:
        """Turn every failure of the block into a one-line :class:`DicomwebError`."""
        try:
            yield
        except DicomwebError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from None

    def _error(
        self,
        exc: BaseException,
        what: str,
        retried: int = 0,
        *,
        budget: float | None = None,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> DicomwebError:
        """The one-line error for ``exc`` (never the HTTP library's text, which may hold a URL
        with credentials); ``retried``: how many retries were made; ``budget``: the call's
        deadline in seconds."""
        import requests

        from copilot.study.dicomweb_http import DeadlineExceeded, ResponseTooLarge, WebPageAnswer

        s = self.settings
        budget = s.dicomweb_deadline_s if budget is None else budget
        tries = f" (after {retried} {'retry' if retried == 1 else 'retries'})" if retried else ""
        if isinstance(exc, WebPageAnswer):
            return DicomwebError(
                f"{self.url} answered with a web page (a login page?) instead of DICOM JSON {what}; "
                "check the URL and credentials"
            )
        if isinstance(exc, ResponseTooLarge):
            return DicomwebError(
                f"{self.url} sent more than {exc.cap / 2**20:.0f} MiB {what}; the answer was aborted "
                "(the size limit of one answer)"
            )
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
                return DicomwebForbiddenError(
                    f"{self.url} denied access (HTTP 403) {what}; these credentials may not do this"
                )
            if code in (404, 410):
                return DicomwebGoneError(f"not found on {self.url} (HTTP {code}) {what}")
            reason = re.sub(r"[^\w .,-]", "", str(exc.response.reason or ""))[:60]
            return DicomwebError(f"{self.url} answered HTTP {code} {reason}".rstrip() + f" {what}{tries}")
        if isinstance(exc, requests.exceptions.SSLError):
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                detail = re.search(r"certificate verify failed: ([\w ,.-]+)", text)
                why = f" ({detail.group(1).strip()})" if detail else ""
                return DicomwebUnreachableError(
                    f"cannot reach PACS at {self.url}: TLS certificate not trusted{why}; set "
                    "REQUESTS_CA_BUNDLE to the CA bundle that signed the server's certificate"
                )
            return DicomwebUnreachableError(
                f"cannot reach PACS at {self.url}: TLS handshake failed; check that the URL's "
                "scheme (https) and port are the server's TLS port"
            )
        if isinstance(exc, requests.ConnectTimeout) and not isinstance(exc, DeadlineExceeded):
            return DicomwebUnreachableError(
                f"cannot reach PACS at {self.url}: the connection was not accepted {what}{tries}; "
                "is the server running and the URL right (a firewall may drop it)?"
            )
        read_timeout = isinstance(exc, requests.ConnectionError) and "read timed out" in str(exc).lower()
        if isinstance(exc, requests.Timeout) or read_timeout:
            limit = budget if isinstance(exc, DeadlineExceeded) else min(budget, s.dicomweb_timeout_s)
            return DicomwebTimeoutError(
                f"the PACS at {self.url} did not answer within {limit:g}s {what}{tries}; it accepted "
                "the connection but sent no complete answer (overloaded or hung?; the limit is "
                "dicomweb_deadline_s)"
            )
        if isinstance(exc, requests.ConnectionError):
            text = str(exc)
            if "refused" in text:
                return DicomwebUnreachableError(
                    f"cannot reach PACS at {self.url}: connection refused; "
                    f"is the server running and the URL right?{tries}"
                )
            if "resolve" in text or "Name or service" in text or "getaddrinfo" in text:
                return DicomwebUnreachableError(
                    f"cannot reach PACS at {self.url}: host name not found; check the URL"
                )
            return DicomwebUnreachableError(
                f"cannot reach PACS at {self.url} {what}: the connection failed{tries}; "
                "is the server running and the URL right?"
            )
        if isinstance(exc, requests.RequestException):
            return DicomwebError(f"request to {self.url} failed {what}: {type(exc).__name__}")
        log.debug("unexpected DICOMweb answer", exc_info=True)
        return DicomwebError(
            f"{self.url} sent an answer that is not valid DICOMweb {what} ({type(exc).__name__})"
        )

    # -- QIDO-RS / WADO-RS / STOW-RS -------------------------------------------------------
    def get_json(self, path: str, params: dict[str, str] | None, what: str) -> list[dict[str, Any]]:
        """GET ``<url><path>`` as DICOM JSON (a list of objects; HTTP 204 is an empty list),
        under the call's deadline and :data:`MAX_JSON_BYTES`."""

        def call() -> list[dict[str, Any]]:
            response = self.session.get(
                f"{self.url}{path}{query_string(params)}",
                headers={"Accept": "application/dicom+json"},
                timeout=(self.settings.dicomweb_timeout_s, self.settings.dicomweb_timeout_s),
            )
            if response.status_code == 204:
                return []
            response.raise_for_status()
            found = json.loads(response.content) if response.content.strip() else []
            if not isinstance(found, list):
                raise ValueError("DICOM JSON is a list")
            return [item for item in found if isinstance(item, dict)]

        return self._do(what, call)

    def _uid_path(self, *uids: str) -> str:
        """``/studies/<study>/series/<series>/instances/<sop>`` for the UIDs given; refuses
        anything that is not a DICOM UID (it would otherwise become part of the URL path)."""
        for uid in uids:
            if not valid_uid(uid):
                raise DicomwebError(f"{self.url} listed an invalid UID (not a DICOM UID); not requested")
        names = ("studies", "series", "instances")
        return "".join(f"/{name}/{uid}" for name, uid in zip(names, uids, strict=False))

    def search_studies(
        self, params: dict[str, str] | None = None, *, every_page: bool = True
    ) -> list[dict[str, Any]]:
        """QIDO-RS: the studies matching ``params`` (DICOM JSON); every page, or the first."""
        what = "while listing studies"
        asked = {**(params or {}), "includefield": STUDY_FIELDS}

        def page(offset: int) -> list[dict[str, Any]]:
            return self.get_json("/studies", {**asked, "limit": str(PAGE), "offset": str(offset)}, what)

        return all_pages(page, "0020000D") if every_page else page(0)

    def search_series(self, study_uid: str) -> list[dict[str, Any]]:
        """QIDO-RS: the series of one study (DICOM JSON)."""
        what = f"while listing the series of study {safe_part(study_uid)}"
        path = self._uid_path(study_uid) + "/series"
        return all_pages(
            lambda offset: self.get_json(path, {"limit": str(PAGE), "offset": str(offset)}, what),
            "0020000E",
        )

    def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS: every instance header of one series (DICOM JSON, no pixels)."""
        what = f"while reading the headers of series {safe_part(series_uid)} of study {safe_part(study_uid)}"
        return self.get_json(self._uid_path(study_uid, series_uid) + "/metadata", None, what)

    def retrieve_instance(self, record: InstanceRecord) -> Dataset:
        """WADO-RS: one instance, in its stored transfer syntax, within a deadline and a size
        cap that follow its expected size (never above ``max_decoded_mb``)."""
        what = f"while fetching instance {record.sop_uid} of study {record.study_uid}"
        self._uid_path(record.study_uid, record.series_uid, record.sop_uid)
        size = expected_bytes(record)
        cap = min(int(size * 1.25) + INSTANCE_MARGIN, self.settings.max_decoded_mb * 2**20 + INSTANCE_MARGIN)
        try:
            return self._do(
                what,
                lambda: self.client.retrieve_instance(
                    record.study_uid,
                    record.series_uid,
                    record.sop_uid,
                    media_types=(("application/dicom", "*"),),
                ),
                seconds=self.settings.dicomweb_deadline_s + cap / MIN_BYTES_PER_S,
                max_bytes=cap,
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
        size = sum(len(getattr(ds, "PixelData", b"") or b"") for ds in datasets)
        return self._do(
            what,
            lambda: self.client.store_instances(list(datasets)),
            idempotent=False,
            seconds=self.settings.dicomweb_deadline_s + size / MIN_BYTES_PER_S,
        )

    def instance_url(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """The WADO-RS URL of one instance (without credentials)."""
        parts = (safe_part(u) for u in (study_uid, series_uid, sop_uid))
        return "{}/studies/{}/series/{}/instances/{}".format(self.url, *parts)

    def cache_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where one instance is kept once fetched."""
        return self.cache_folder / safe_part(study_uid) / safe_part(series_uid) / f"{safe_part(sop_uid)}.dcm"
