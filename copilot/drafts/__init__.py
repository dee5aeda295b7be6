"""Sign-off: what the copilot writes waits, as a draft, for a person's approval.

- :mod:`copilot.drafts.model`: the :class:`Draft` and its states (draft, edited, approved,
  rejected, sent) with the only moves allowed between them.
- :mod:`copilot.drafts.store`: drafts kept per draft folder in the data directory (they
  survive restarts; atomic writes; a lock per draft).
- :mod:`copilot.drafts.signing`: an answer kept as a draft, approval making the signed SR,
  what ``push`` may send.
- :mod:`copilot.drafts.diff`: the person's edits against the agent's text.

Nothing the copilot wrote reaches a PACS or a report file without a person's approval, unless
``--unreviewed`` is given explicitly (and the SR then says no person reviewed it).
"""

from copilot.drafts.model import Draft, DraftOutput, DraftState
from copilot.drafts.store import DraftStore

__all__ = ["Draft", "DraftOutput", "DraftState", "DraftStore"]
