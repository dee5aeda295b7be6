"""Who signed an SR, and what the machine said before they did.

An SR the copilot writes is one of three kinds, told apart in the file itself:

- **a draft** (no :class:`SignOff`): ``VerificationFlag`` UNVERIFIED, ``CompletionFlag``
  PARTIAL; kept on this machine only, never sent;
- **signed** (:meth:`SignOff.approved`): ``VerificationFlag`` VERIFIED with the approver in the
  document's Verifying Observer Sequence (name, organization, the time they approved),
  ``CompletionFlag`` COMPLETE; its "Answer" item is the text the person signed, and the
  agent's own text is kept beside it as the "Agent answer" item;
- **unreviewed** (:meth:`SignOff.unreviewed_by_choice`): sent with ``--unreviewed`` for a
  research pipeline: UNVERIFIED, PARTIAL, and a "Review" item saying no person reviewed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["AGENT_ANSWER", "REVIEW", "SignOff", "person_name"]

#: The text item keeping the agent's original answer in a signed SR.
AGENT_ANSWER = "Agent answer"
#: The text item saying how the SR was reviewed.
REVIEW = "Review"
_PREFIXES = {"dr", "dr.", "prof", "prof.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "mx", "mx."}


def person_name(name: str) -> str:
    """A free-text name as a DICOM person name (PN): ``"Dr Jane Smith"`` becomes
    ``"Smith^Jane^^Dr"``, ``"Smith, Jane"`` becomes ``"Smith^Jane"``; a name already in PN
    form (with ``^``) is kept."""
    name = " ".join(name.replace("=", " ").split())
    if "^" in name:
        return name
    if "," in name:
        family, _, given = name.partition(",")
        return f"{family.strip()}^{given.strip()}"
    words = name.split(" ")
    prefix = words.pop(0) if len(words) > 1 and words[0].lower() in _PREFIXES else ""
    family = words.pop() if words else ""
    given = " ".join(words)
    return "^".join([family, given, "", prefix]).rstrip("^") if (given or prefix) else f"{family}^"


@dataclass(frozen=True)
class SignOff:
    """The review an SR records (see the module rules)."""

    text: str
    """The answer text the SR carries: the person's, for a signed SR."""
    agent_text: str
    """What the copilot wrote (kept as its own item when signed)."""
    approver: str | None = None
    """The person who approved it (free text; written as a DICOM person name)."""
    organization: str = ""
    """The approver's organization ('' when not given)."""
    approved_at: datetime | None = None
    """When they approved it."""
    unreviewed: bool = False
    """Sent without a person's review, by explicit choice (``--unreviewed``)."""

    @classmethod
    def approved(
        cls, text: str, agent_text: str, approver: str, approved_at: datetime, organization: str | None = None
    ) -> SignOff:
        """A person's approval of ``text``."""
        return cls(text, agent_text, approver, organization or "", approved_at)

    @classmethod
    def unreviewed_by_choice(cls, text: str, agent_text: str) -> SignOff:
        """No person reviewed it: sent with ``--unreviewed``."""
        return cls(text, agent_text, unreviewed=True)

    @property
    def verified(self) -> bool:
        """True for a person's approval."""
        return bool(self.approver) and self.approved_at is not None and not self.unreviewed

    def review_note(self) -> str:
        """The "Review" text item."""
        if self.verified:
            edited = "edited by the approver" if self.text != self.agent_text else "not edited"
            assert self.approved_at is not None
            return (
                f"Approved by {self.approver} at {self.approved_at.isoformat(timespec='seconds')}; {edited}"
            )
        return "Not reviewed by a person: sent unreviewed (--unreviewed, research use)"
