"""Where drafts are kept: one owner-only folder per draft under ``<data_dir>/drafts/``.

    <data_dir>/drafts/<id>/draft.json      the Draft (state, texts, approver, the answer)
    <data_dir>/drafts/<id>/evidence/*.dcm  the source images' headers (no pixels), to build the SR
    <data_dir>/drafts/<id>/seg/*.dcm       the SEG made with the answer ('ask --seg')
    <data_dir>/drafts/<id>/sr.dcm          the signed (or unreviewed) SR, once made

Rules: a draft survives restarts (it is a file, not process memory); every write of
``draft.json`` goes to a temporary file renamed over it, so a crash leaves the old draft or the
new one, never half of one; a change is read, applied and written under the draft's lock
(:meth:`DraftStore.update`), so two processes approving and editing at once cannot lose either
move. Drafts hold patient data (names, IDs, header values): the folders are 0700 and the
files 0600, as the conversation threads are.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from copilot.config import Settings
from copilot.drafts.model import Draft, DraftState
from copilot.errors import DraftError, DraftNotFoundError
from copilot.paths import private_dir

__all__ = ["DraftStore"]

log = logging.getLogger(__name__)

#: How long a change waits for another process's change of the same draft.
LOCK_TIMEOUT_S = 30.0
_RECORD = "draft.json"


class DraftStore:
    """The drafts kept under one folder (normally ``<data_dir>/drafts``)."""

    def __init__(self, root: Path) -> None:
        """``root``: the folder holding one sub-folder per draft (created on first write)."""
        self.root = root

    @classmethod
    def of(cls, settings: Settings) -> DraftStore:
        """The store of ``settings``' data folder."""
        return cls(settings.data_dir / "drafts")

    # -- paths ---------------------------------------------------------------------------
    def folder(self, draft_id: str) -> Path:
        """The draft's own folder (created, owner-only)."""
        if not draft_id.isalnum():
            raise DraftNotFoundError(f"{draft_id!r} is not a draft id")
        return private_dir(self.root / draft_id)

    def evidence_dir(self, draft_id: str) -> Path:
        """Where the source images' headers of the draft are kept."""
        return private_dir(self.folder(draft_id) / "evidence")

    def seg_dir(self, draft_id: str) -> Path:
        """Where the draft's SEG is kept until it is signed."""
        return private_dir(self.folder(draft_id) / "seg")

    def sr_file(self, draft_id: str) -> Path:
        """The draft's SR file (it exists once signed or sent unreviewed)."""
        return self.folder(draft_id) / "sr.dcm"

    def segs(self, draft_id: str) -> list[Path]:
        """The draft's SEG files."""
        folder = self.root / draft_id / "seg"
        return sorted(folder.glob("*.dcm")) if folder.is_dir() else []

    # -- records -------------------------------------------------------------------------
    def new_id(self) -> str:
        """A fresh draft id (8 hex digits) not used in this store."""
        while True:
            draft_id = secrets.token_hex(4)
            if not (self.root / draft_id).exists():
                return draft_id

    def save(self, draft: Draft) -> Draft:
        """Write ``draft`` (atomically: a temporary file renamed over the record)."""
        folder = self.folder(draft.id)
        target = folder / _RECORD
        temp = folder / f".{_RECORD}.{secrets.token_hex(4)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(draft.model_dump_json(indent=1))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise DraftError(f"cannot keep draft {draft.id} in {folder}: {exc.strerror or exc}") from exc
        return draft

    def _read(self, draft_id: str) -> Draft:
        path = self.root / draft_id / _RECORD
        try:
            return Draft.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise DraftNotFoundError(f"no draft {draft_id!r} (see 'copilot drafts list')") from exc
        except (OSError, ValidationError, ValueError) as exc:
            raise DraftError(f"draft {draft_id} cannot be read ({type(exc).__name__}): {path}") from exc

    def _ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / _RECORD).is_file())

    def resolve(self, key: str) -> str:
        """The id ``key`` names: an id, or a prefix of exactly one."""
        key = key.strip()
        ids = self._ids()
        if key in ids:
            return key
        found = [i for i in ids if key and i.startswith(key)]
        if len(found) == 1:
            return found[0]
        if found:
            raise DraftNotFoundError(f"{key!r} names {len(found)} drafts; give more of the id")
        raise DraftNotFoundError(f"no draft {key!r} (see 'copilot drafts list')")

    def get(self, key: str) -> Draft:
        """The draft with this id (or unique id prefix)."""
        return self._read(self.resolve(key))

    def drafts(self, *, thread_id: str | None = None, state: DraftState | None = None) -> list[Draft]:
        """Every readable draft, oldest first (a thread's or a state's only, when given); an
        unreadable record is skipped with a warning."""
        drafts = []
        for draft_id in self._ids():
            try:
                draft = self._read(draft_id)
            except DraftError as exc:
                log.warning("%s", exc)
                continue
            if (thread_id is None or draft.thread_id == thread_id) and (
                state is None or draft.state == state
            ):
                drafts.append(draft)
        return sorted(drafts, key=lambda d: d.created_at)

    def owner_of(self, sop_uid: str) -> Draft | None:
        """The draft a DICOM object (by SOP Instance UID) was made from, or None."""
        return next((d for d in self.drafts() if sop_uid in d.objects), None)

    @contextmanager
    def locked(self, key: str) -> Iterator[Draft]:
        """Hold the draft's lock (across processes) and yield it as it is now."""
        from filelock import FileLock, Timeout

        draft_id = self.resolve(key)
        lock = FileLock(str(self.folder(draft_id) / ".lock"), mode=0o600)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout as exc:
            raise DraftError(f"draft {draft_id} is being changed by another process; try again") from exc
        try:
            yield self._read(draft_id)
        finally:
            lock.release()

    def update(self, key: str, change: Callable[[Draft], Draft]) -> Draft:
        """Read the draft, apply ``change`` and write the result, all under its lock."""
        with self.locked(key) as draft:
            return self.save(change(draft))

    def delete(self, key: str) -> None:
        """Remove the draft and its files."""
        shutil.rmtree(self.root / self.resolve(key), ignore_errors=True)
