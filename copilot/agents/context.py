"""Run-time context of the graph: collaborators that are not state (not checkpointed)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from copilot.agents.planner import Planner
from copilot.config import Settings
from copilot.llm import ChatModel
from copilot.paths import private_dir
from copilot.study.model import Study
from copilot.study.prior import PriorStudy
from copilot.tools.contract import Tool, ToolResult

log = logging.getLogger(__name__)
#: A result-cache key: (the image's cache slot, the tool, everything else that made the result).
CacheKey = tuple[str, str, str]


@dataclass
class ResultCache:
    """Tool results keyed by what produced them, thread-safe; in memory for the session and,
    once :meth:`persist` names a folder, on disk across processes (a second ``copilot ask``
    about the same image reuses the results without loading any model).

    The key (see ``copilot.agents.nodes.execute.cache_key``) holds the image file's content
    digest (pixels, not UIDs), the tool's version, where it ran and the exact weights
    (:meth:`~copilot.tools.contract.Tool.cache_origin`), the earlier results it used and its
    arguments. Disk entries live in one folder per image (``<cache_dir>/tool-results/<slot>/``,
    removed by ``copilot forget --study``/``--all`` and ``copilot cache clear``).

    Disk entries are JSON files named by a hash of the key, written atomically, owner-only; an
    entry whose artifacts (heatmaps, masks) are gone is a miss.
    """

    _data: dict[CacheKey, ToolResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    directory: Path | None = None

    def persist(self, directory: Path) -> None:
        """Keep results under ``directory`` as well (created owner-only on first write)."""
        self.directory = directory

    def _file(self, key: CacheKey) -> Path | None:
        if self.directory is None:
            return None
        digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()
        return self.directory / key[0] / f"{digest}.json"

    def get(self, key: CacheKey) -> ToolResult | None:
        """A cached result, or None."""
        with self._lock:
            hit = self._data.get(key)
        if hit is not None:
            return hit
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            result = ToolResult.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.debug("ignoring unreadable cached result %s: %s", path, exc)
            return None
        if any(not Path(a.path).exists() for a in result.artifacts):
            return None
        with self._lock:
            self._data[key] = result
        return result

    def put(self, key: CacheKey, result: ToolResult) -> None:
        """Remember a successful result."""
        with self._lock:
            self._data[key] = result
        path = self._file(key)
        if path is None:
            return
        try:
            private_dir(path.parent)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(result.model_dump_json(), encoding="utf-8")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only cache must not fail the answer
            log.warning("could not cache %s result on disk: %s", key[1], exc)


@dataclass
class Context:
    """What nodes need besides the state: settings, tools, the study, the planner, an optional LLM.
    (Progress events go through LangGraph's stream writer, ``runtime.stream_writer``.)"""

    settings: Settings
    tools: dict[str, Tool]
    study: Study
    planner: Planner
    llm: ChatModel | None = None
    redact: Callable[[str], str] = field(default=lambda text: text)
    cache: ResultCache = field(default_factory=ResultCache)
    #: Other studies of the same patient opened with this one (a comparison says whether a
    #: prior study is available); None when only the study itself was given.
    others: tuple[Study, ...] | None = None
    #: How the prior is chosen among ``others`` (:func:`copilot.study.prior.find_prior`): called
    #: at most once, on the first read of :attr:`prior`, so a question that compares nothing
    #: never opens a listed prior or fetches its image. None: the caller gives no prior (then no
    #: tool compares).
    prior_lookup: Callable[[], PriorStudy | None] | None = None
    _prior: PriorStudy | None = field(default=None, init=False, repr=False)
    _prior_found: bool = field(default=False, init=False, repr=False)
    _prior_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def prior(self) -> PriorStudy | None:
        """The prior, looked up on first read and remembered (thread-safe): given to the requests
        of the tools that compare studies and to the answer's comparison note; None when the
        caller gave no lookup."""
        with self._prior_lock:
            if not self._prior_found:
                self._prior = self.prior_lookup() if self.prior_lookup is not None else None
                self._prior_found = True
            return self._prior

    @property
    def prior_looked_up(self) -> bool:
        """True once :attr:`prior` was read (the lookup ran, or there was none to run)."""
        return self._prior_found
