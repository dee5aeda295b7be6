"""Where studies come from: one decision, "folder or DICOMweb server?", made once.

    source = open_source("/data/cxr")                        # a FolderSource
    source = open_source("http://pacs:8042/dicom-web")       # a DicomwebSource
    studies = source.open(query=StudyQuery(patient="P001"), progress=bar)   # every study, opened
    listed = source.list_studies(query=StudyQuery(date="2024-01-01..2024-12-31"))  # what 'studies' shows
    studies, study = source.select("ACC12345", date=None)                  # one study (+ priors)
    study = source.open_study(listed.studies[0])                           # a listed study, opened

The API (``Copilot.open``), the CLI commands and the TUI open studies through
:func:`open_source`; none of them tests a path or URL itself.

Rules:

- **One model whatever the source.** Every source returns the same :class:`StudySet` (a folder
  through :func:`~copilot.study.index.index_folder`, a server through
  :func:`~copilot.study.dicomweb.index_dicomweb`), filtered by the same :class:`StudyQuery`
  (a server gets the filters as QIDO-RS parameters).
- **Three ways to open, by cost.** ``open`` gives every study opened (series and headers:
  what ``analyze`` and the terminal app need), ``list_studies`` what ``copilot studies`` shows (a
  server: study-level QIDO-RS only, studies not opened), ``select`` one study named by the
  user (a server is asked for that study only, and for its patient's other studies);
  ``open_study`` opens one listed study when it is chosen (a server: that study's series and
  headers only).
- **The first kind that claims a target opens it**, in the order of :data:`SOURCE_KINDS`: an
  http(s) URL is a DICOMweb server's base URL; anything else is a local path. A new kind of
  source (DIMSE C-FIND/C-MOVE, a zip file) is one class here, added to that tuple.
- **Sources are read-only.** A source names the local folders outputs must never be written
  into (:meth:`StudySource.protected`); a server's local mirror protects itself when listed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from copilot.errors import NothingReadableError
from copilot.study.dicomweb_server import is_dicomweb_url, safe_url

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.model import Study, StudySet
    from copilot.study.query import StudyQuery

__all__ = ["SOURCE_KINDS", "DicomwebSource", "FolderSource", "SourceKind", "StudySource", "open_source"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
Target = str | os.PathLike[str]


@runtime_checkable
class StudySource(Protocol):
    """A place studies are listed from and their images read from (read-only)."""

    #: What the user named, safe to print (a URL without its credentials).
    location: str
    #: A short name for a title bar: a folder's name, a server's URL (without credentials).
    title: str
    #: The word shown with the progress bar while listing ("Indexing", "Listing").
    action: ClassVar[str]

    @classmethod
    def claims(cls, target: Target) -> bool:
        """True when ``target`` (what the user typed) names a source of this kind."""
        ...

    def check(self) -> None:
        """Raise :class:`NothingReadableError` when the source plainly cannot be opened (a
        missing folder), without listing anything; a server is checked when opened."""
        ...

    def open(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """The studies matching ``query`` with every skipped file and why (``use_cache``: the
        header cache of a folder may be read and updated)."""
        ...

    def list_studies(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """The studies matching ``query`` as cheaply as the source allows (a server's are
        listed, not opened: see :class:`~copilot.study.model.StudyListing`)."""
        ...

    def select(
        self,
        key: str,
        *,
        date: str | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> tuple[StudySet, Study]:
        """The study ``key`` names (and ``date``, a DICOM date or range, when given), opened,
        with the set it belongs to (for priors). Raises :class:`StudyError` when it names no
        study or several."""
        ...

    def open_study(self, study: Study) -> Study:
        """``study`` opened (its series and headers read, no pixels): an opened study is
        returned as it is; a listed one is read now (a server: that study's requests only).
        Raises :class:`StudyError` when it has no readable image."""
        ...

    def protected(self) -> list[str]:
        """The local folders of this source that outputs must never be written into."""
        ...

    def files_root(self, study: Study, studies: StudySet | None = None) -> Path:
        """The local folder holding ``study``'s files (a server's: its local mirror);
        ``studies`` is the set it was opened in, when there is one."""
        ...


class FolderSource:
    """A folder (or one file) of DICOM studies, indexed header-only with a cache."""

    action: ClassVar[str] = "Indexing"

    def __init__(self, path: Target, settings: Settings | None = None) -> None:
        self.path = Path(path)
        self.location = str(path)
        self.title = self.path.name or self.location
        self.settings = settings

    @classmethod
    def claims(cls, target: Target) -> bool:
        """Any path (the last kind tried)."""
        return True

    def check(self) -> None:
        """Raise :class:`NothingReadableError` when the path does not exist."""
        if not self.path.exists():
            raise NothingReadableError(f"{self.location}: no such file or folder")

    def open(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """Index the folder (see :func:`~copilot.study.index.index_folder`), then filter."""
        from copilot.study.index import index_folder

        found = index_folder(self.path, self.settings, use_cache=use_cache, progress=progress)
        return query.apply(found) if query is not None else found

    def list_studies(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """The folder indexed (header-only, cached): the same as :meth:`open`."""
        return self.open(query=query, progress=progress, use_cache=use_cache)

    def select(
        self,
        key: str,
        *,
        date: str | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> tuple[StudySet, Study]:
        """Index the folder, then choose (:func:`~copilot.study.selection.choose_study`)."""
        from copilot.study.query import StudyQuery
        from copilot.study.selection import choose_study

        query = StudyQuery(date=date) if date else None
        studies = self.open(query=query, progress=progress, use_cache=use_cache)
        return studies, choose_study(studies, key)

    def open_study(self, study: Study) -> Study:
        """The study as it is: a folder's studies are opened when indexed."""
        return study

    def protected(self) -> list[str]:
        """The folder itself, when it exists."""
        return [self.location] if self.path.exists() else []

    def files_root(self, study: Study, studies: StudySet | None = None) -> Path:
        """The indexed folder."""
        return Path(studies.root) if studies is not None else self.path


class DicomwebSource:
    """A DICOMweb server's studies: QIDO-RS lists them, WADO-RS fetches what a question needs."""

    action: ClassVar[str] = "Listing"

    def __init__(self, url: Target, settings: Settings | None = None) -> None:
        self.url = str(url)
        self.location = self.title = safe_url(self.url)
        self.settings = settings

    @classmethod
    def claims(cls, target: Target) -> bool:
        """An http(s) URL."""
        return is_dicomweb_url(target)

    def check(self) -> None:
        """Nothing to check before listing (an unreachable server fails when opened)."""

    def open(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """Every study of the server matching ``query``, opened (see
        :func:`~copilot.study.dicomweb_listing.index_dicomweb`); no header cache to skip."""
        from copilot.study.dicomweb_listing import index_dicomweb

        return index_dicomweb(self.url, self.settings, query=query, progress=progress)

    def list_studies(
        self,
        *,
        query: StudyQuery | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> StudySet:
        """The server's studies from study-level QIDO-RS only (paged), not opened."""
        from copilot.study.dicomweb_listing import list_dicomweb

        return list_dicomweb(self.url, self.settings, query=query)

    def select(
        self,
        key: str,
        *,
        date: str | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
    ) -> tuple[StudySet, Study]:
        """Ask the server for the study ``key`` names only (see
        :func:`~copilot.study.dicomweb_listing.select_dicomweb`)."""
        from copilot.study.dicomweb_listing import select_dicomweb

        return select_dicomweb(self.url, key, self.settings, date=date)

    def open_study(self, study: Study) -> Study:
        """A listed study's series searched and headers read (see
        :func:`~copilot.study.dicomweb_listing.open_study`); an opened one as it is. Raises
        :class:`StudyError` with the reasons when it has no readable image (one study's fault),
        a :class:`DicomwebError` subclass when the server cannot be used."""
        if study.opened:
            return study
        from copilot.errors import StudyError
        from copilot.study.dicomweb_listing import open_study

        opened, skipped = open_study(self.url, study, self.settings)
        if opened is None:
            reasons = "; ".join(dict.fromkeys(k.reason for k in skipped)) or (
                "the server has no image for it now (deleted or moved since it was listed?)"
            )
            raise StudyError(f"study {study.study_uid} on {self.location} has no readable image: {reasons}")
        for k in skipped:
            log.info("%s: %s skipped: %s", study.study_uid, k.path, k.reason)
        return opened

    def protected(self) -> list[str]:
        """None: the server is not a local folder (its mirror protects itself when listed)."""
        return []

    def files_root(self, study: Study, studies: StudySet | None = None) -> Path:
        """The folder of the local mirror holding the study's primary image."""
        return Path(study.primary_instance().path).parent


class SourceKind(Protocol):
    """A kind of source: its class (it says which targets it claims, and is built from one)."""

    def claims(self, target: Target) -> bool:
        """True when ``target`` names a source of this kind."""
        ...

    def __call__(self, target: Target, settings: Settings | None = None, /) -> StudySource:
        """The source ``target`` names."""
        ...


#: The kinds of source, in the order they are offered a target; the last claims any path.
SOURCE_KINDS: tuple[SourceKind, ...] = (DicomwebSource, FolderSource)


def open_source(target: Target | StudySource, settings: Settings | None = None) -> StudySource:
    """The source ``target`` names: a DICOMweb base URL or a local path (a source is returned
    as it is). Nothing is listed or read yet."""
    if isinstance(target, StudySource):
        return target
    for kind in SOURCE_KINDS:
        if kind.claims(target):
            source = kind(target, settings)
            log.debug("%s: %s", source.location, type(source).__name__)
            return source
    raise NothingReadableError(f"{target}: not a folder, file or DICOMweb URL")
