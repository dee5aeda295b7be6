"""Starting or joining Ray, for ``copilot serve`` and ``copilot analyze --ray`` (the ``ray``
extra; nothing here imports Ray until it is asked for).

A local instance is private and leaves nothing running:

- its temporary folder (sessions, logs, sockets, spilled objects) is :func:`ray_temp_dir`, an
  owner-only (0700) folder under the copilot's cache folder, never the world-readable
  ``/tmp/ray``; ``copilot forget --all`` removes it. Where the cache folder's path is too long
  for Ray's sockets it is a folder under the system temp folder, made by this user; one
  already there that is a symbolic link, another user's, or not 0700 is refused
  (:class:`~copilot.errors.UnsafeFolderError`, :func:`private_ray_dir`): another local user
  could have made it first;
- a watchdog (:mod:`copilot.runtime.ray_reaper`) ends every process of the instance when the
  process that started it dies, ``kill -9`` included; sessions of earlier runs whose driver is
  gone are ended and removed at the next start (:func:`clean_stale_sessions`).

Joining a cluster (an address) changes none of these: that cluster's folders are its own.

Ray's own Python log records (its warnings, such as "Token authentication is enabled for this
Ray cluster") go to ``driver.log`` in that private folder (:func:`route_ray_logging`), never to
the terminal: the terminal shows the copilot's lines. Lines Ray's C++ core writes to stderr
itself at ERROR level (``core_worker.cc``) are also in its own log files there; Ray has no
setting that keeps them off stderr without dropping them from those files too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError, UnsafeFolderError
from copilot.paths import private_dir, private_file

if TYPE_CHECKING:
    from copilot.config import Settings

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "this needs Ray: pip install 'dicom-copilot[ray]'"
#: Environment Ray's workers need to see what this process sees (settings, folders, offline).
PASSED_PREFIXES = ("COPILOT_", "HF_", "TRANSFORMERS_", "XDG_", "TORCH_HOME", "TOKENIZERS_")
#: Environment variable marking every process of a local instance (see ray_reaper).
RUN_MARK = "COPILOT_RAY_RUN"
#: Longest temporary folder Ray can use: its sockets live in ``<dir>/session_<stamp>_<pid>/sockets/``
#: and a Unix socket path holds at most 107 bytes.
MAX_TEMP_DIR_CHARS = 38
#: Ray's own temporary folder inside :func:`ray_temp_dir`.
RAY_SUBFOLDER = "r"
_SESSION = re.compile(r"^session_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_\d+_(\d+)$")
#: The watchdog of the instance this process started (its stdin is the pipe it waits on).
_reaper: subprocess.Popen[bytes] | None = None
#: The :data:`RUN_MARK` value this process set for its instance (cleared by :func:`stop_ray`).
_run_token: str | None = None
#: How long :func:`stop_ray` waits for the watchdog to end what is left of the instance.
REAPER_WAIT_S = 10.0
#: Never handed to Ray: a server's ingress is given the key's digest instead.
KEY_VARIABLE = "COPILOT_SERVE_API_KEY"
#: Ray's Python log records, in :func:`ray_temp_dir`.
DRIVER_LOG = "driver.log"
#: The file handler of Ray's Python log records (see :func:`route_ray_logging`).
_log_handler: logging.FileHandler | None = None
#: Where Ray's own start-up records come from while ``ray.init`` has cleared the ``ray`` logger.
RAY_INTERNAL_LOGGER = "ray._private"


def require_ray() -> Any:
    """The ``ray`` module (with Serve and Data), or :class:`CopilotError` naming the extra."""
    try:
        import ray
        import ray.data
        import ray.serve
    except ImportError:
        raise CopilotError(RAY_INSTALL_HINT) from None
    return ray


def worker_env() -> dict[str, str]:
    """This process's COPILOT_/HF_/... environment for Ray's workers (the API key left out)."""
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES) and k != KEY_VARIABLE}


def ray_temp_dir(settings: Settings) -> Path:
    """The private folder of local Ray instances: ``<cache_dir>/ray``, or, where that path is
    too long for Ray's sockets, ``<system temp>/copilot-ray-<uid>-<digest of that path>``;
    owner-only (0700) either way. Ray itself works in its ``r`` subfolder (which Ray makes
    0777: the folder around it keeps others out). Not created here."""
    wanted = Path(settings.cache_dir).expanduser().absolute() / "ray"
    if len(str(wanted)) <= MAX_TEMP_DIR_CHARS:
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:10]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"copilot-ray-{uid}-{digest}"


def _owned_private(path: Path) -> Path:
    """``path`` made by this user, 0700, or :class:`UnsafeFolderError` when it was already
    there as something else (a symbolic link is never followed)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)  # the umask can only narrow it
    st = os.lstat(path)
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a folder"
    elif st.st_uid != os.getuid():
        problem = "belongs to another user"
    elif st.st_mode & 0o777 != 0o700:
        problem = f"is open to other users (mode {st.st_mode & 0o777:o}, not 700)"
    if problem:
        raise UnsafeFolderError(
            f"Ray's private folder {path} {problem}: another local user may have made it; "
            "remove it, or set COPILOT_CACHE_DIR to a shorter path"
        )
    return path


def private_ray_dir(settings: Settings) -> Path:
    """:func:`ray_temp_dir`, created owner-only: under the cache folder with
    :func:`~copilot.paths.private_dir`; under the shared system temp folder only when this
    user made it and it is 0700 (else :class:`UnsafeFolderError`, one line)."""
    folder = ray_temp_dir(settings)
    if os.name == "posix" and folder.parent == Path(tempfile.gettempdir()):
        return _owned_private(folder)
    return private_dir(folder)


def route_ray_logging(folder: Path) -> logging.Handler:
    """Send the ``ray`` loggers' records (warnings and above) to ``folder/driver.log`` instead
    of the terminal: the file's handler replaces Ray's own stderr handler, and the records no
    longer reach the root logger's. The folder is made owner-only; the file is opened on the
    first record. Calling again (``ray.init`` clears the ``ray`` logger's handlers) reuses
    the handler."""
    global _log_handler
    path = private_file(private_dir(folder) / DRIVER_LOG).absolute()
    if _log_handler is None or _log_handler.baseFilename != str(path):
        if _log_handler is not None:
            _log_handler.close()
        _log_handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        _log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ray")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_log_handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    return _log_handler


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_naming(text: str) -> list[int]:
    """This user's processes whose command line holds ``text`` (Linux; [] elsewhere)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == os.getuid() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def clean_stale_sessions(temp_dir: Path) -> int:
    """End the processes of, and remove, every session in ``temp_dir`` whose driver (the pid
    ending its name) is gone; returns how many sessions were removed."""
    removed = 0
    if not temp_dir.is_dir():
        return removed
    for session in temp_dir.iterdir():
        match = _SESSION.match(session.name)
        if match is None or session.is_symlink() or _alive(int(match.group(1))):
            continue
        for pid in _processes_naming(str(session)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(session, ignore_errors=True)
        removed += 1
    latest = temp_dir / "session_latest"
    if latest.is_symlink() and not latest.exists():
        latest.unlink(missing_ok=True)
    if removed:
        log.info("removed %d stale Ray session(s) from %s", removed, temp_dir)
    return removed


def _start_reaper(token: str) -> None:
    """The watchdog that ends the instance's processes when this process dies (see module)."""
    global _reaper
    script = Path(__file__).with_name("ray_reaper.py")
    _reaper = subprocess.Popen(
        [sys.executable, "-I", str(script), token],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _end_run() -> None:
    """End this process's watchdog (closing its pipe makes it end what is left of the
    instance, then exit) and clear the run marker this process set."""
    global _reaper, _run_token
    reaper, _reaper = _reaper, None
    if reaper is not None:
        if reaper.stdin is not None:
            with contextlib.suppress(OSError):
                reaper.stdin.close()
        try:
            reaper.wait(timeout=REAPER_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("Ray's watchdog (pid %d) is still ending the old instance", reaper.pid)
    if _run_token is not None and os.environ.get(RUN_MARK) == _run_token:
        del os.environ[RUN_MARK]
    _run_token = None


def stop_ray() -> None:
    """Stop what :func:`start_ray` started in this process: shut Ray down (when it runs here),
    end the instance's watchdog (which ends any process of the instance still alive) and
    clear the ``COPILOT_RAY_RUN`` marker this process set, so a later start in this process
    is a new run, with its own marker and watchdog, never mistaken for the old one. Safe to
    call when nothing was started."""
    ray = sys.modules.get("ray")  # never imported here just to stop
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    _end_run()


def _local_options(settings: Settings | None, cpus: float) -> dict[str, Any]:
    """``ray.init`` options of a private local instance (and its watchdog started)."""
    global _run_token
    from copilot.config import get_settings

    temp = private_ray_dir(settings or get_settings()) / RAY_SUBFOLDER
    temp.mkdir(mode=0o700, exist_ok=True)
    clean_stale_sessions(temp)
    _end_run()  # an earlier run's watchdog and marker (Ray shut down without stop_ray)
    token = _run_token = secrets.token_hex(8)
    os.environ[RUN_MARK] = token  # inherited by every process Ray starts
    if os.name == "posix" and Path("/proc").is_dir():
        _start_reaper(token)
    # Logical CPUs are reservations: idle tools share the cores, so a small machine still
    # places one actor or replica of every tool.
    return {
        "include_dashboard": False,
        "num_cpus": max(2, os.cpu_count() or 2, math.ceil(cpus)),
        "_temp_dir": str(temp),
    }


def start_ray(address: str | None, cpus: float = 0.0, settings: Settings | None = None) -> bool:
    """Join the cluster at ``address``, or start a private local instance (see the module
    docstring) with at least ``cpus`` logical CPUs; True when this call started Ray (the caller
    then ends it with :func:`stop_ray`). Failures are one line."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    from copilot.config import get_settings

    logs = private_ray_dir(settings or get_settings())  # refused when another user made it
    handler = route_ray_logging(logs)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if not address:
        options.update(_local_options(settings, cpus))
    options["runtime_env"] = {"env_vars": worker_env()}
    # ray.init clears the "ray" logger's handlers, then warns (token authentication) from
    # ray._private: the file takes those records too, not Python's last-resort stderr.
    internal = logging.getLogger(RAY_INTERNAL_LOGGER)
    internal.addHandler(handler)
    try:
        ray.init(address=address or None, **options)
    except (ConnectionError, ValueError, RuntimeError, OSError) as exc:
        raise CopilotError(f"cannot start or reach Ray at {address or 'a local instance'}: {exc}") from None
    finally:
        internal.removeHandler(handler)
        route_ray_logging(logs)
    return True
