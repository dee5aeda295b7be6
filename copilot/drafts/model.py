"""A draft: what the copilot wrote, waiting for a person's sign-off before it leaves the machine.

States and the only moves between them::

    draft --edit--> edited --edit--> edited
      |               |
      +---approve-----+---> approved --send--> sent
      |               |        |
      +---reject------+--------+---> rejected

- ``agent_text`` is what the machine wrote and never changes; ``text`` is what the person
  signs (the agent's text until edited). An edit that restores the agent's text returns the
  draft to ``draft``.
- Approval names a person (``approver``) and a time (``approved_at``); an approved draft can
  no longer be edited (reject it and ask again to change it).
- ``sent`` is reached from ``approved``, or from ``draft``/``edited`` only with
  ``unreviewed`` (a research pipeline's explicit choice, recorded in the SR it sent).

Every move returns a new :class:`Draft` (the models are frozen) or raises
:class:`~copilot.errors.DraftStateError` saying why it is not allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from copilot.errors import DraftStateError
from copilot.schema import Answer

__all__ = ["Draft", "DraftOutput", "DraftState", "default_outputs"]

#: Where a draft stands.
DraftState = Literal["draft", "edited", "approved", "rejected", "sent"]
#: What a draft becomes once signed: a DICOM SR of the answer, a DICOM SEG of its masks.
DraftOutput = Literal["sr", "seg"]


def default_outputs() -> list[DraftOutput]:
    """What a draft becomes when nothing else is asked: a DICOM SR."""
    return ["sr"]


def _now() -> datetime:
    return datetime.now(UTC)


class Draft(BaseModel):
    """One answer of a thread waiting for (or past) a person's sign-off."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The draft's id (short hex), as the CLI names it.")
    thread_id: str = Field(description="The conversation thread the answer belongs to.")
    study_uid: str = Field(description="The Study Instance UID the answer is about.")
    patient_id: str = Field(default="", description="The study's PatientID (for listing only).")
    question: str = Field(description="The question the answer answers.")
    agent_text: str = Field(description="The answer as the copilot wrote it (never changed).")
    text: str = Field(description="The text a person signs: the agent's until edited.")
    state: DraftState = Field(default="draft", description="Where the draft stands.")
    outputs: list[DraftOutput] = Field(
        default_factory=default_outputs, description="What signing it produces: an SR, a SEG."
    )
    sr_path: str | None = Field(default=None, description="Where to write the signed SR ('ask --sr').")
    seg_dir: str | None = Field(default=None, description="Where to copy the SEG once signed ('ask --seg').")
    sources: list[str] = Field(
        default_factory=list, description="The study sources no output may be written into."
    )
    answer: Answer = Field(description="The answer with its findings, measurements and provenance.")
    created_at: datetime = Field(default_factory=_now, description="When the copilot wrote it (UTC).")
    edited_at: datetime | None = Field(default=None, description="The last edit (UTC).")
    approver: str | None = Field(default=None, description="Who approved or rejected it.")
    organization: str | None = Field(default=None, description="The approver's organization.")
    approved_at: datetime | None = Field(default=None, description="When it was approved (UTC).")
    rejected_at: datetime | None = Field(default=None, description="When it was rejected (UTC).")
    reason: str | None = Field(default=None, description="Why it was rejected.")
    unreviewed: bool = Field(
        default=False, description="Sent without a person's approval ('push --unreviewed')."
    )
    objects: list[str] = Field(
        default_factory=list,
        description="SOP Instance UIDs of the DICOM objects made from it (the signed SR, the SEG).",
    )
    sent_to: list[str] = Field(default_factory=list, description="The PACS it was sent to (credential-free).")
    sent_at: datetime | None = Field(default=None, description="When it was last sent (UTC).")

    # -- state ---------------------------------------------------------------------------
    @property
    def editable(self) -> bool:
        """True while the text may change (``draft`` or ``edited``)."""
        return self.state in ("draft", "edited")

    @property
    def signed(self) -> bool:
        """True once a person approved it (``approved``, or ``sent`` after approval)."""
        return self.approved_at is not None and self.state in ("approved", "sent")

    @property
    def edited(self) -> bool:
        """True when the person's text differs from the agent's."""
        return self.text != self.agent_text

    def edit(self, text: str) -> Draft:
        """The draft with the person's ``text``; only while it is editable."""
        if not self.editable:
            raise DraftStateError(
                f"draft {self.id} is {self.state}: only a draft or edited draft can be edited"
                + (
                    f" (reject it with 'copilot drafts reject {self.id}' and ask again)"
                    if self.signed
                    else ""
                )
            )
        if not text.strip():
            raise DraftStateError(f"draft {self.id}: the text cannot be empty")
        state: DraftState = "draft" if text == self.agent_text else "edited"
        return self.model_copy(update={"text": text, "state": state, "edited_at": _now()})

    def approve(self, by: str, organization: str | None = None) -> Draft:
        """The draft approved by ``by`` now; only a draft or edited draft."""
        who = " ".join(by.split())
        if not who:
            raise DraftStateError(f"draft {self.id}: approval needs the approver's name (--by NAME)")
        if not self.editable:
            raise DraftStateError(
                f"draft {self.id} is {self.state}: only a draft or edited draft can be approved"
            )
        return self.model_copy(
            update={
                "state": "approved",
                "approver": who,
                "organization": (" ".join(organization.split()) or None) if organization else None,
                "approved_at": _now(),
            }
        )

    def reject(self, by: str, reason: str | None = None) -> Draft:
        """The draft rejected by ``by``; never once it was sent."""
        who = " ".join(by.split())
        if not who:
            raise DraftStateError(f"draft {self.id}: rejection needs the reviewer's name (--by NAME)")
        if self.state in ("sent", "rejected"):
            raise DraftStateError(f"draft {self.id} is {self.state} already")
        return self.model_copy(
            update={"state": "rejected", "approver": who, "rejected_at": _now(), "reason": reason or None}
        )

    def check_sendable(self, unreviewed: bool = False) -> None:
        """Raise :class:`DraftStateError` unless the draft may leave the machine: approved (or
        sent before), or not yet decided and ``unreviewed`` asked for explicitly."""
        if self.state == "rejected":
            raise DraftStateError(f"draft {self.id} was rejected: it is never sent")
        if self.signed or (unreviewed and self.editable):
            return
        raise DraftStateError(
            f"draft {self.id} is not approved ({self.state}): approve it first with "
            f"'copilot drafts approve {self.id} --by NAME' (or send it unreviewed with --unreviewed)"
        )

    def sent(self, url: str, objects: list[str], unreviewed: bool = False) -> Draft:
        """The draft after its objects were stored at ``url``."""
        self.check_sendable(unreviewed)
        return self.model_copy(
            update={
                "state": "sent",
                "unreviewed": self.unreviewed or not self.signed,
                "objects": list(dict.fromkeys([*self.objects, *objects])),
                "sent_to": list(dict.fromkeys([*self.sent_to, url])),
                "sent_at": _now(),
            }
        )
