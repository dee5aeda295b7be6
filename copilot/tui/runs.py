"""One question waiting, in flight or answered: its study, its step, its trace (no Textual here).

Every question is a :class:`Run` bound to exactly one study, the study selected when it was
typed: a question queued behind another still runs against that study when the user has moved
on. Events from the core update only their own run, so two questions never mix in a trace, and
the step shown next to the ask box (planning, each tool, composing) is the run's own. A
cancelled run ignores whatever its call still delivers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from copilot.schema import (
    Answer,
    AnswerDone,
    AnswerToken,
    CopilotEvent,
    PlanMade,
    ToolFinished,
    ToolStarted,
)
from copilot.study.model import Study


@dataclass
class ToolState:
    """One tool's line in a question's trace."""

    status: str = "planned"
    seconds: float | None = None
    detail: str = ""
    fix: str | None = None


@dataclass
class Run:
    """A question about one study, from submission to answer (or failure)."""

    number: int
    study: Study
    question: str
    thread_id: str
    started: float = field(default_factory=time.monotonic)
    clock: str = field(default_factory=lambda: time.strftime("%H:%M"))
    step: str = "planning"
    plan: list[str] = field(default_factory=list)
    planner: str = ""
    notes: list[str] = field(default_factory=list)
    tools: dict[str, ToolState] = field(default_factory=dict)
    answer: Answer | None = None
    error: str | None = None
    finished: float | None = None
    #: Waiting for the study's running question to finish (it has not been sent yet).
    queued: bool = False
    cancelled: bool = False

    @property
    def busy(self) -> bool:
        """True until the answer (or the failure, or the cancellation) arrives; a queued
        question is busy too."""
        return self.finished is None

    @property
    def running(self) -> bool:
        """True while the question has been sent and its answer has not arrived."""
        return self.busy and not self.queued

    def begin(self) -> None:
        """The question leaves the queue and is sent now: its clock starts again."""
        self.queued = False
        self.started = time.monotonic()
        self.clock = time.strftime("%H:%M")
        self.step = "planning"

    def cancel(self) -> None:
        """The user cancelled the question (running or queued): what its call still delivers
        is ignored."""
        self.cancelled = True
        self.queued = False
        self.finished = time.monotonic()
        self.step = "cancelled"

    @property
    def elapsed(self) -> float:
        """Seconds since the question was sent (until it finished)."""
        return (self.finished or time.monotonic()) - self.started

    def apply(self, event: CopilotEvent) -> None:
        """Update the step and the trace from one core event."""
        match event:
            case PlanMade():
                self.plan = list(event.tools)
                self.planner = event.planner
                self.notes = list(event.notes)
                for tool in self.plan:
                    self.tools.setdefault(tool, ToolState())
                self.step = "running tools" if self.plan else "composing"
            case ToolStarted():
                self.tools.setdefault(event.tool, ToolState()).status = "running"
                self._tool_step()
            case ToolFinished():
                # A run on the prior study's image (for a comparison) is a row of its own, never
                # this study's run of the same tool.
                row = f"{event.tool} (prior image)" if event.prior_image else event.tool
                state = self.tools.setdefault(row, ToolState())
                state.status = event.status + (" (cached)" if event.cached else "")
                state.seconds = event.seconds
                state.detail = event.detail
                state.fix = event.fix
                self._tool_step()
            case AnswerToken():
                self.step = "composing"
            case AnswerDone():
                self.step = "checking the answer"

    def _tool_step(self) -> None:
        running = [name for name, s in self.tools.items() if s.status == "running"]
        waiting = [name for name, s in self.tools.items() if s.status in ("planned", "running")]
        if running:
            self.step = f"running {', '.join(running)}"
        elif not waiting:
            self.step = "composing"

    def done(self, answer: Answer) -> None:
        """The answer arrived: the trace takes the answer's own tool statuses."""
        self.answer = answer
        self.finished = time.monotonic()
        self.step = "answered"
        for t in answer.tools:
            state = self.tools.setdefault(t.name, ToolState())
            if not state.status.startswith(t.status):  # keep "(cached)"
                state.status = t.status
            state.seconds = t.seconds
            state.detail = t.detail or state.detail
            state.fix = t.fix or state.fix

    def failed(self, message: str) -> None:
        """The question failed as a whole."""
        self.error = message
        self.finished = time.monotonic()
        self.step = "failed"

    def status_line(self) -> str:
        """``answering 3.2s · running cxr_classifier`` while busy (``queued`` before)."""
        if self.queued:
            return "queued"
        return f"answering {self.elapsed:.1f}s · {self.step}"
