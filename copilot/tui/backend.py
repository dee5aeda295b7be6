"""What the terminal app needs of the core: the :class:`Backend` interface.

The app talks to the core only through it; :class:`copilot.Copilot` is the real one, and a
test double needs nothing else (tests/test_tui.py's ``FakeBackend``). A backend that also keeps
conversation threads implements :class:`ThreadedBackend`: the app then shows a study's saved
turns before they can shape a follow-up.

A server's studies arrive *listed* (``study.opened`` is False: no series yet); the app opens
one with :meth:`Backend.open_study` when the user selects it, so the list costs study-level
requests only, whatever the archive's size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from copilot import Answer
    from copilot.agents.state import Turn
    from copilot.api import EventSink
    from copilot.study.model import Study, StudySet
    from copilot.study.query import StudyQuery

__all__ = ["Backend", "ThreadedBackend"]


class Backend(Protocol):
    """Opens studies and answers questions about them (called from worker threads)."""

    def open(
        self,
        path: str | Path,
        progress: Callable[[int, int], None] | None = None,
        *,
        query: StudyQuery | None = None,
    ) -> StudySet:
        """The studies of a folder (indexed) or of a DICOMweb base URL (listed, not opened)
        matching ``query``; ``progress(done, total)`` as it goes."""
        ...

    def select(self, target: str | Path, key: str, *, date: str | None = None) -> tuple[StudySet, Study]:
        """The one study ``key`` names (UID, AccessionNumber or patient ID; ``date`` narrows
        it), opened, with the set it belongs to (its patient's other studies)."""
        ...

    def open_study(self, study: Study) -> Study:
        """``study`` opened (series and headers read); an opened study as it is. Raises with a
        one-line reason when it cannot be opened."""
        ...

    def ask(
        self,
        target: Study,
        question: str,
        thread_id: str | None = None,
        *,
        on_event: EventSink | None = None,
    ) -> Answer:
        """The answer to ``question`` about ``target`` in thread ``thread_id``; progress events
        (plan, tool started and finished, answer tokens) go to ``on_event`` as they happen."""
        ...


@runtime_checkable
class ThreadedBackend(Backend, Protocol):
    """A backend that keeps conversation threads across sessions."""

    def history(self, thread_id: str) -> list[Turn]:
        """The finished turns of a thread (each a :class:`~copilot.agents.state.Turn`, with
        ``question`` and ``answer``)."""
        ...
