"""Whether something (a tool, a model) can be used now, and if not why and how to fix it."""

from __future__ import annotations

from pydantic import BaseModel


class Availability(BaseModel):
    """Whether a tool or model can run now; when not, why and the command that fixes it."""

    ok: bool
    reason: str = ""
    fix: str | None = None
