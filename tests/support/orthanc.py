"""A throwaway Orthanc PACS for tests: its own config, storage and loopback port.

    server = OrthancServer.start(tmp_path)      # None-safe: OrthancServer.missing() says why
    server.upload(paths)
    ...
    server.stop()

The Debian packages ``orthanc`` and ``orthanc-dicomweb`` provide the binary and the DICOMweb
plug-in; a system Orthanc service, if one runs, is left alone: this one uses a free port, no
DICOM port, a temporary storage folder and a JSON config written here. HTTP basic auth is on
(``users``), and a Lua filter answers 403 to the user ``blocked`` so that tests can see both
401 and 403. Only the standard library and ``requests`` are used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["BLOCKED_USER", "OrthancServer"]

log = logging.getLogger(__name__)

BLOCKED_USER = "blocked"
_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")
_LUA = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if username == '%s' then
    return false
  end
  return true
end
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port() -> int:
    """A loopback TCP port nothing listens on (for "server stopped" tests)."""
    return _free_port()


class OrthancServer:
    """One Orthanc process with the DICOMweb plug-in on ``127.0.0.1:<port>``."""

    def __init__(self, workdir: Path, port: int, users: dict[str, str], process: subprocess.Popen[bytes]):
        self.workdir = workdir
        self.port = port
        self.users = users
        self.process = process

    # -- discovery ----------------------------------------------------------------------------
    @staticmethod
    def binary() -> str | None:
        """The Orthanc executable, or None."""
        return shutil.which("Orthanc") or next(
            (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK)), None
        )

    @staticmethod
    def plugin() -> Path | None:
        """The DICOMweb plug-in library, or None."""
        for folder in _PLUGIN_DIRS:
            for path in sorted(Path(folder).glob("libOrthancDicomWeb.so*")) if Path(folder).is_dir() else []:
                return path
        return None

    @classmethod
    def missing(cls) -> str | None:
        """Why no test Orthanc can start here (None when it can)."""
        if cls.binary() is None:
            return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; see tests/pacs)"
        if cls.plugin() is None:
            return "the Orthanc DICOMweb plug-in is not installed (apt-get install orthanc-dicomweb)"
        return None

    # -- life cycle ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls, workdir: Path, users: dict[str, str] | None = None, timeout: float = 30.0
    ) -> OrthancServer:
        """Start Orthanc in ``workdir`` (config, storage, log) on a free port; wait until its REST
        API answers. Raises RuntimeError (with the log's tail) when it does not come up."""
        binary, plugin = cls.binary(), cls.plugin()
        if binary is None or plugin is None:
            raise RuntimeError(cls.missing() or "Orthanc missing")
        users = dict(users or {"copilot": "copilot-test-password"})
        users.setdefault(BLOCKED_USER, "blocked-password")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "filter.lua").write_text(_LUA % BLOCKED_USER)
        last = ""
        for _attempt in range(3):  # a port taken between choosing and binding: try another
            port = _free_port()
            storage = workdir / "storage"
            storage.mkdir(exist_ok=True)
            config = {
                "Name": "copilot-test",
                "StorageDirectory": str(storage),
                "IndexDirectory": str(storage),
                "HttpPort": port,
                "DicomServerEnabled": False,
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": True,
                "RegisteredUsers": users,
                "LuaScripts": [str(workdir / "filter.lua")],
                "Plugins": [str(plugin)],
                "OrthancExplorerEnabled": False,
                "WebDavEnabled": False,
                "HttpThreadsCount": 8,
                "ConcurrentJobs": 1,
                "SaveJobs": False,
                "OverwriteInstances": True,
                "StorageCompression": False,
                "DicomWeb": {
                    "Enable": True,
                    "Root": "/dicom-web/",
                    "EnableWado": False,
                    "StudiesMetadata": "Full",
                    "SeriesMetadata": "Full",
                },
            }
            (workdir / "orthanc.json").write_text(json.dumps(config, indent=1))
            logfile = (workdir / "orthanc.log").open("ab")
            process = subprocess.Popen(
                [binary, str(workdir / "orthanc.json")],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                start_new_session=True,
            )
            logfile.close()
            server = cls(workdir, port, users, process)
            if server._wait(timeout):
                log.debug("test Orthanc on port %d", port)
                return server
            server.stop()
            last = server.log_tail()
        raise RuntimeError(f"Orthanc did not start: {last}")

    def _wait(self, timeout: float) -> bool:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/system", auth=self.auth, timeout=2).status_code == 200:
                    return True
            time.sleep(0.1)
        return False

    def log_tail(self, chars: int = 2000) -> str:
        """The end of Orthanc's log."""
        try:
            return (self.workdir / "orthanc.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process (terminate, then kill after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    # -- REST ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb base URL."""
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        """(user, password) of the first registered user other than the blocked one."""
        user = next(u for u in self.users if u != BLOCKED_USER)
        return user, self.users[user]

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call (authenticated); returns the decoded JSON (or None)."""
        import requests

        response = requests.request(method, f"{self.url}{path}", auth=self.auth, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def upload(self, paths: Iterable[Path]) -> int:
        """Store DICOM files through the REST API; returns how many were stored."""
        count = 0
        for path in paths:
            self.rest("POST", "/instances", data=path.read_bytes())
            count += 1
        return count

    def delete(self, uid: str) -> int:
        """Delete the study, series or instance with this UID (as another user of the PACS
        might); returns how many resources were deleted."""
        paths = {"Study": "studies", "Series": "series", "Instance": "instances"}
        deleted = 0
        for hit in self.rest("POST", "/tools/lookup", data=uid) or []:
            if hit.get("Type") in paths:
                self.rest("DELETE", f"/{paths[hit['Type']]}/{hit['ID']}")
                deleted += 1
        return deleted
