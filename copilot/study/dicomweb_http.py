"""The HTTP transport of every DICOMweb call: a total deadline and a size cap per call.

    with call_limits(deadline=time.monotonic() + 10, max_bytes=64 * 2**20):
        session.get(url)          # the session has a BoundedAdapter mounted

``requests`` limits each socket read, not a call: a server that sends one byte a second, or
answers a gigabyte, would hold a call for hours or fill the memory. :class:`BoundedAdapter`
(mounted on every DICOMweb session) enforces, for the calls made inside :func:`call_limits`:

- **A total deadline** across connect, the headers and every read of the body: the connect
  and read time limits are clamped to the time left, and a watchdog shuts the connection's
  socket down when the deadline passes (which wakes a read blocked on a trickling server).
  It raises :class:`DeadlineExceeded` (a ``requests.Timeout``).
- **A size cap**, checked against ``Content-Length`` before reading and while streaming the
  body, so a huge answer is aborted at the cap, never loaded: :class:`ResponseTooLarge`.
- **A web page is not DICOM JSON**: a successful answer to a JSON request that is
  ``text/html`` or starts with ``<`` (a login page, a proxy's error page) raises
  :class:`WebPageAnswer` instead of a JSON decoding error later.

Outside :func:`call_limits` the adapter behaves like ``requests``' own. The body is always
read here (the caller gets it in ``response.content``), so ``stream=True`` is not honoured.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = [
    "BoundedAdapter",
    "CallLimits",
    "DeadlineExceeded",
    "ResponseTooLarge",
    "WebPageAnswer",
    "call_limits",
]

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class DeadlineExceeded(requests.Timeout):
    """The call did not finish within its total deadline."""


class ResponseTooLarge(requests.RequestException):
    """The answer was larger than the call's size cap (aborted while streaming)."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"answer larger than {cap} bytes")
        self.cap = cap


class WebPageAnswer(requests.RequestException):
    """A JSON request was answered with an HTML page (a login or error page)."""


@dataclass
class CallLimits:
    """The limits of the calls made in one :func:`call_limits` block (monotonic clock)."""

    deadline: float
    max_bytes: int
    fired: bool = False
    released: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock``: it is shut down when the deadline passes."""
        if sock is None:
            return
        with self._lock:
            if self.released:
                return
            if sock not in self._sockets:
                self._sockets.append(sock)
            if self.fired:
                self._shut(sock)

    def fire(self) -> None:
        """The deadline passed: shut every watched socket down (wakes blocked reads and
        sends). Once :meth:`release` has run, nothing is shut: those sockets may be back in
        the connection pool, used by another call."""
        with self._lock:
            if self.released:
                return
            self.fired = True
            for sock in self._sockets:
                self._shut(sock)

    def release(self) -> None:
        """The block ended: stop watching its sockets (a late :meth:`fire` shuts nothing)."""
        with self._lock:
            self.released = True
            self._sockets.clear()

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


def _limits() -> CallLimits | None:
    found: CallLimits | None = getattr(_current, "limits", None)
    return found


@contextlib.contextmanager
def call_limits(deadline: float, max_bytes: int) -> Iterator[CallLimits]:
    """Run the block's DICOMweb calls (on this thread) under a total ``deadline`` (a
    ``time.monotonic()`` value) and a response-size cap of ``max_bytes``."""
    limits = CallLimits(deadline=deadline, max_bytes=max_bytes)
    previous = _limits()
    _current.limits = limits
    watchdog = threading.Timer(limits.remaining(), limits.fire)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield limits
    finally:
        watchdog.cancel()
        limits.release()
        _current.limits = previous


def _watch(sock: socket.socket | None) -> None:
    limits = _limits()
    if limits is not None:
        limits.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection whose socket the current call's watchdog may shut down: from the moment
    it is connected (so sending a large body is covered, not only waiting for the answer),
    and again when a pooled connection is reused for the answer."""

    def connect(self) -> None:
        """Connect, then put the socket under the current call's watchdog."""
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        """Send a request (a reused connection is watched while its body is sent)."""
        if self.sock is not None:
            _watch(self.sock)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        _watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The TLS variant of :class:`_WatchedHTTPConnection` (its methods, over urllib3's TLS
    connection; the TLS handshake is bounded by the connect time limit, clamped to the time
    left)."""


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _clamp(timeout: Any, remaining: float) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    return (
        min(float(connect) if connect is not None else remaining, remaining),
        min(float(read) if read is not None else remaining, remaining),
    )


def _wants_json(request: requests.PreparedRequest) -> bool:
    accept = str(request.headers.get("Accept", "")).lower()
    return "json" in accept and "multipart" not in accept


class BoundedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that enforces the current :func:`call_limits` (see the module)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with connections the watchdog can shut down."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """A proxy's pool manager, with watched connections too."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send ``request`` within the current call's deadline and size cap."""
        limits = _limits()
        if limits is None:
            return super().send(request, stream, timeout, verify, cert, proxies)
        if limits.remaining() <= 0:
            raise DeadlineExceeded("the deadline passed before the request was sent", request=request)
        response: requests.Response | None = None
        try:
            response = super().send(request, True, _clamp(timeout, limits.remaining()), verify, cert, proxies)
            self._read_body(response, limits)
        except requests.RequestException as exc:
            if response is not None:
                response.close()
            if limits.fired and not isinstance(exc, ResponseTooLarge | WebPageAnswer):
                raise DeadlineExceeded("the deadline passed", request=request) from None
            raise
        except Exception:
            if response is not None:
                response.close()
            if limits.fired:
                raise DeadlineExceeded("the deadline passed", request=request) from None
            raise
        if response.ok and _wants_json(request):
            kind = str(response.headers.get("Content-Type", "")).lower()
            if kind.startswith(("text/html", "application/xhtml")) or response.content.lstrip()[:1] == b"<":
                raise WebPageAnswer("answered with a web page", request=request, response=response)
        return response

    @staticmethod
    def _read_body(response: requests.Response, limits: CallLimits) -> None:
        """Read the whole body under the cap and the deadline into ``response.content``."""
        cap = limits.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(cap)
        chunks: list[bytes] = []
        total = 0
        for chunk in response.raw.stream(CHUNK, decode_content=True):
            total += len(chunk)
            if total > cap:
                raise ResponseTooLarge(cap)
            if limits.fired or limits.remaining() <= 0:
                limits.fire()
                raise DeadlineExceeded("the deadline passed while reading the answer")
            chunks.append(chunk)
        response._content = b"".join(chunks)
        response._content_consumed = True
