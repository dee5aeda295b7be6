"""From an answer to a draft, and from a signed draft to the DICOM objects that may be sent.

    draft = open_draft(store, answer, study, DraftRequest(outputs=["sr"], sr_path="out/sr.dcm"))
    draft = edit(store, draft.id, "Heart size normal. ...")
    draft = approve(store, draft.id, by="Dr Jane Smith")            # the signed SR is made now
    release(store, draft)                                           # written where --sr/--seg asked
    draft, files = sendable(store, draft.id)                        # what push may send
    mark_sent(store, draft.id, url, result_uids)

Rules:

- A draft keeps what its SR needs without the study at hand: the answer (findings,
  measurements, provenance) and the source images' headers (no pixels), so it is signed after a
  restart, or on another day, from the draft alone. Opening a draft builds its unsigned SR once
  in memory, so a draft that could never become an SR fails at once, not at approval.
- The SR is made when a person approves (their name, organization and time as its verifying
  observer; the text they signed as the answer, the agent's as its own item) and kept in the
  draft's folder; then it is written where ``ask --sr`` asked, and the SEG copied where
  ``--seg`` asked, through the write guard (never into a study).
- Only an approved draft is sendable; ``unreviewed`` sends a draft no person approved, and its
  SR says so (:mod:`copilot.dicomout.signoff`). A rejected draft is never sent.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from copilot import outputs
from copilot.drafts.model import Draft, DraftOutput, default_outputs
from copilot.drafts.store import DraftStore
from copilot.errors import CopilotError, DicomObjectError, DraftError
from copilot.schema import Answer
from copilot.study.model import Study

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = ["DraftRequest", "approve", "edit", "mark_sent", "open_draft", "reject", "release", "sendable"]

log = logging.getLogger(__name__)

_EVIDENCE = "evidence.json"


class DraftRequest(BaseModel):
    """What the person asked the answer to become once signed, and where it goes."""

    outputs: list[DraftOutput] = Field(default_factory=default_outputs, description="An SR, a SEG, or both.")
    sr_path: str | None = Field(default=None, description="Write the signed SR here ('ask --sr').")
    seg_dir: str | None = Field(default=None, description="Copy the SEG here once signed ('ask --seg').")
    sources: list[str] = Field(default_factory=list, description="Study sources never written into.")


def _write_private(path: Path, data: bytes) -> None:
    """``data`` to ``path`` (0600), through a temporary file renamed over it."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _keep_evidence(store: DraftStore, draft_id: str, evidence: list[Dataset]) -> None:
    headers = [ds.to_json_dict() for ds in evidence]
    _write_private(store.folder(draft_id) / _EVIDENCE, json.dumps(headers).encode())


def _evidence(store: DraftStore, draft_id: str) -> list[Dataset]:
    from pydicom import Dataset

    path = store.folder(draft_id) / _EVIDENCE
    try:
        headers = json.loads(path.read_bytes())
        return [Dataset.from_json(h) for h in headers]
    except (OSError, ValueError, TypeError) as exc:
        raise DraftError(f"draft {draft_id}: its source image headers cannot be read ({path})") from exc


def open_draft(
    store: DraftStore, answer: Answer, study: Study, request: DraftRequest, draft_id: str | None = None
) -> Draft:
    """Keep ``answer`` about ``study`` as a new draft (id ``draft_id``, else a fresh one). Raises
    :class:`DicomObjectError` when its SR could never be built."""
    from copilot.dicomout.sr import build_sr_from, encode_sr, sr_evidence

    evidence = sr_evidence(answer, study) if "sr" in request.outputs else []
    if evidence:
        encode_sr(build_sr_from(answer, evidence))  # checked now, never sent: built again when signed
    draft = Draft(
        id=draft_id or store.new_id(),
        thread_id=answer.thread_id,
        study_uid=answer.study_uid,
        patient_id=study.patient_id,
        question=answer.question,
        agent_text=answer.text,
        text=answer.text,
        outputs=list(request.outputs),
        sr_path=request.sr_path,
        seg_dir=request.seg_dir,
        sources=[*request.sources, *(i.path for i in study.instances())],
        answer=answer,
    )
    _keep_evidence(store, draft.id, evidence)
    return store.save(draft)


def edit(store: DraftStore, key: str, text: str) -> Draft:
    """The draft with the person's ``text`` (see :meth:`Draft.edit`)."""
    return store.update(key, lambda d: d.edit(text))


def reject(store: DraftStore, key: str, by: str, reason: str | None = None) -> Draft:
    """The draft rejected by ``by`` (see :meth:`Draft.reject`)."""
    return store.update(key, lambda d: d.reject(by, reason))


def _sop_uid(path: Path) -> str:
    import pydicom

    return str(
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID
    )


def _make_sr(store: DraftStore, draft: Draft) -> Path:
    """Build the draft's SR for its state (signed, or unreviewed) into its folder."""
    from copilot.dicomout.signoff import SignOff
    from copilot.dicomout.sr import build_sr_from, encode_sr

    if draft.signed:
        assert draft.approver is not None and draft.approved_at is not None
        signoff = SignOff.approved(
            draft.text, draft.agent_text, draft.approver, draft.approved_at, draft.organization
        )
    else:
        signoff = SignOff.unreviewed_by_choice(draft.text, draft.agent_text)
    data = encode_sr(build_sr_from(draft.answer, _evidence(store, draft.id), signoff))
    path = store.sr_file(draft.id)
    _write_private(path, data)
    return path


def _objects(store: DraftStore, draft: Draft) -> list[Path]:
    """The draft's DICOM objects on disk: its SR (when it has one made) and SEG."""
    sr = store.sr_file(draft.id)
    return [*([sr] if "sr" in draft.outputs and sr.is_file() else []), *store.segs(draft.id)]


def approve(store: DraftStore, key: str, by: str, organization: str | None = None) -> Draft:
    """Approve the draft as ``by``: its signed SR is made into the draft's folder, and the
    SOP Instance UIDs of its objects (SR, SEG) are recorded as approved."""
    with store.locked(key) as current:
        approved = current.approve(by, organization)
        if "sr" in approved.outputs:
            _make_sr(store, approved)
        made = _objects(store, approved)
        return store.save(approved.model_copy(update={"objects": [_sop_uid(p) for p in made]}))


def release(store: DraftStore, draft: Draft) -> list[Path]:
    """Write a signed draft's SR where ``ask --sr`` asked and copy its SEG where ``--seg``
    asked, through the write guard; the paths written. Raises :class:`DicomObjectError` when a
    destination refuses a file: the approval stands, and the message says where the signed
    objects are kept."""
    if not draft.signed:
        raise DraftError(f"draft {draft.id} is not approved: nothing of it is written")
    written: list[Path] = []
    try:
        if draft.sr_path and "sr" in draft.outputs:
            data = store.sr_file(draft.id).read_bytes()
            written.append(outputs.write_bytes(draft.sr_path, data, sources=draft.sources))
        if draft.seg_dir:
            for seg in store.segs(draft.id):
                target = Path(draft.seg_dir) / seg.name
                written.append(outputs.write_bytes(target, seg.read_bytes(), sources=draft.sources))
    except (CopilotError, OSError) as exc:
        raise DicomObjectError(
            f"draft {draft.id} is approved, but {exc}; its signed objects are kept in "
            f"{store.folder(draft.id)} ('copilot push {draft.id} --to URL' sends them)"
        ) from exc
    return written


def sendable(store: DraftStore, key: str, *, unreviewed: bool = False) -> tuple[Draft, list[Path]]:
    """The draft and the files ``push`` may send for it: raises
    :class:`~copilot.errors.DraftStateError` unless it is approved (or ``unreviewed`` is
    asked for a draft not yet decided: its SR is then made, saying no person reviewed it)."""
    with store.locked(key) as draft:
        draft.check_sendable(unreviewed)
        if not draft.signed and "sr" in draft.outputs:
            _make_sr(store, draft)
        files = _objects(store, draft)
    if not files:
        raise DraftError(f"draft {draft.id} has no DICOM object to send")
    return draft, files


def mark_sent(store: DraftStore, key: str, url: str, files: list[Path], *, unreviewed: bool = False) -> Draft:
    """Record that the draft's ``files`` were stored at ``url``."""
    uids = [_sop_uid(p) for p in files]
    return store.update(key, lambda d: d.sent(url, uids, unreviewed))
