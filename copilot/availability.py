"""Whether something (a tool, a model, the network) can be used now, and if not why.

Offline is detected, not configured: :func:`probe` opens one TCP connection to a host (or to
the proxy that would carry the request) with a deadline of about a second, and remembers the
answer for the rest of the process, so a workstation without a route to the model hub learns
it once and says so once (:data:`OFFLINE_HINT`) instead of waiting on every download.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from urllib.parse import urlsplit

from pydantic import BaseModel

log = logging.getLogger(__name__)

#: The one sentence said when no model hub can be reached.
OFFLINE_HINT = "offline: weights can be copied in with `copilot models add` or `copilot models import BUNDLE`"

#: Seconds a reachability probe may take (DNS plus TCP connect).
PROBE_TIMEOUT_S = 1.0


class Availability(BaseModel):
    """Whether a tool or model can run now; when not, why and the command that fixes it."""

    ok: bool
    reason: str = ""
    fix: str | None = None


class Reachability(BaseModel):
    """The answer of one probe: ``target`` is ``host:port`` (the proxy's when one is set)."""

    ok: bool
    target: str
    detail: str = ""


_lock = threading.Lock()
_probes: dict[str, Reachability] = {}


def _target(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        proxied = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxied.hostname:
            return proxied.hostname, proxied.port or (443 if proxied.scheme == "https" else 80)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _connect(host: str, port: int, timeout_s: float, answer: list[str]) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            answer.append("")
    except OSError as exc:
        answer.append(exc.strerror or str(exc) or type(exc).__name__)


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Reachability:
    """Whether the host serving ``url`` accepts a connection; cached per host for the process.

    DNS resolution and the connection run in a daemon thread so that a hanging resolver
    cannot hold the caller beyond ``timeout_s``; silence counts as unreachable.
    """
    target = _target(url)
    if target is None:
        return Reachability(ok=False, target=url, detail="not a network address")
    key = f"{target[0]}:{target[1]}"
    with _lock:
        known = _probes.get(key)
    if known is not None:
        return known
    answer: list[str] = []
    worker = threading.Thread(target=_connect, args=(*target, timeout_s, answer), daemon=True)
    worker.start()
    worker.join(timeout_s + 0.05)
    if not answer:
        result = Reachability(ok=False, target=key, detail=f"no answer within {timeout_s:.0f} s")
    elif answer[0]:
        result = Reachability(ok=False, target=key, detail=answer[0].lower())
    else:
        result = Reachability(ok=True, target=key)
    log.debug("probe %s: %s", key, result)
    with _lock:
        _probes[key] = result
    return result


def unreachable() -> list[Reachability]:
    """Every probe of this process that failed (empty when none failed or none ran)."""
    with _lock:
        return [r for r in _probes.values() if not r.ok]


def forget_probes() -> None:
    """Drop the remembered probe answers (the network changed; tests)."""
    with _lock:
        _probes.clear()
