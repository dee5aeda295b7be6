"""The answer to one question: :class:`Answer` and its tool trace (:class:`ToolRun`)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Literal, TypedDict

from pydantic import BaseModel, Field, JsonValue

from copilot.schema.display import html_table, markdown_cell, markdown_html, markdown_table, markdown_text
from copilot.schema.records import FindingRecord, ToolRecord, finding_record, to_frame
from copilot.schema.results import Artifact, Citation, Finding, ImageRead, Provenance, ToolStatus
from copilot.schema.statements import Statement

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Answer", "AnswerTable", "AskContract", "ContractTool", "PriorUsed", "ToolRun"]

#: The tables of an answer as DataFrames (:meth:`Answer.to_pandas`).
AnswerTable = Literal["findings", "tools", "citations"]
_TOOL_HEADERS = ("tool", "status", "seconds", "findings", "detail")

#: The keys of a citation in ``copilot ask --json``, in order (a stable contract).
CONTRACT_CITATION_KEYS = ("n", "source", "id", "score", "text", "label", "reference", "licence")


class ContractTool(TypedDict):
    """One tool's line in ``copilot ask --json``."""

    name: str
    status: str
    seconds: float
    detail: str
    fix: str | None


class AskContract(TypedDict):
    """The JSON of ``copilot ask --json`` (a stable contract: docs/BRIEF, pinned by
    tests/test_ask_contract_golden.py)."""

    answer: str
    study_uid: str
    thread_id: str
    plan: list[str]
    tools: list[ContractTool]
    findings: list[dict[str, JsonValue]]
    citations: list[dict[str, JsonValue]]


class PriorUsed(BaseModel):
    """The prior study the answer's comparison was made with, or why there is none."""

    study_uid: str = Field(default="", description="Its Study Instance UID ('' when there is none).")
    date: str = Field(default="", description="Its study date, YYYY-MM-DD ('' when unknown or none).")
    description: str = Field(default="", description="Its study description.")
    view: str = Field(default="", description="The view of the image compared (ViewPosition).")
    reason: str = Field(default="", description="Why there is no prior ('' when there is one).")


class ToolRun(BaseModel):
    """One tool's status in an answer."""

    name: str = Field(description="The tool's name.")
    status: ToolStatus = Field(description="What happened: ok, unavailable, error or skipped.")
    seconds: float = Field(description="How long it took (0 for a cached result).")
    detail: str = Field(default="", description="Why it did not run, or notes on how it ran.")
    fix: str | None = Field(default=None, description="The command that fixes an unavailable tool.")
    images: list[ImageRead] = Field(
        default_factory=list,
        description="The images it read, each with its view, lead first (the one its status and "
        "``Answer.provenance`` describe); empty for a tool that reads no image. A tool declaring "
        "views reads every image of those views; one that does not, the study's primary image.",
    )


class Answer(BaseModel):
    """An explained answer with its evidence."""

    text: str = Field(description="The answer, in Markdown (sections, source tags, citations).")
    study_uid: str = Field(description="The Study Instance UID the answer is about.")
    question: str = Field(description="The question as asked.")
    plan: list[str] = Field(description="Every tool planned for it, all rounds.")
    planner: str = Field(description="Which planner chose them: 'embedded' or 'llm'.")
    thread_id: str = Field(description="The conversation thread (continue it with this id).")
    tools: list[ToolRun] = Field(default_factory=list, description="Each tool's status, in plan order.")
    prior_tools: list[ToolRun] = Field(
        default_factory=list,
        description="The tools a comparing tool used, run on the prior study's image for the "
        "comparison (``images`` names that image); not part of ``tools``, which are this study's.",
    )
    findings: list[Finding] = Field(
        default_factory=list,
        description="Every tool's findings, each with its ``tool`` set; a tool that read several "
        "views gives its findings on each, with ``image`` and ``view`` set.",
    )
    citations: list[Citation] = Field(
        default_factory=list, description="The passages cited, numbered (``n``) as in the text."
    )
    artifacts: list[Artifact] = Field(
        default_factory=list, description="Files the tools wrote, each with its ``tool`` set."
    )
    statements: list[Statement] = Field(
        default_factory=list, description="The answer's sentences with their tools and numbers."
    )
    verification: list[str] = Field(
        default_factory=list, description="Contradictions the verifier found between answer and tools."
    )
    plan_notes: list[str] = Field(default_factory=list, description="How the planner planned.")
    prior: PriorUsed | None = Field(
        default=None,
        description="For a comparison question: the same patient's prior study it used, or why there "
        "is none (recorded in the SR as its comparison study). None for other questions, and when "
        "the question was asked about a study alone (not within its folder or server listing).",
    )
    draft: str | None = Field(
        default=None,
        description="The id of the draft this answer became (asked with a sign-off): nothing of it "
        "leaves the machine until a person approves it (``Copilot.approve``, ``copilot drafts "
        "approve``). None when no sign-off was asked, or the draft could not be kept.",
    )
    draft_error: str | None = Field(
        default=None, description="Why the answer could not be kept as a draft (None when it was)."
    )
    provenance: dict[str, Provenance] = Field(
        default_factory=dict,
        description="Per tool that ran: its version, model id and revision, device (for the "
        "algorithm identification of DICOM results).",
    )

    def to_contract(self) -> AskContract:
        """The JSON of ``copilot ask --json`` (stable contract)."""
        return {
            "answer": self.text,
            "study_uid": self.study_uid,
            "thread_id": self.thread_id,
            "plan": self.plan,
            "tools": [
                {"name": t.name, "status": t.status, "seconds": t.seconds, "detail": t.detail, "fix": t.fix}
                for t in self.tools
            ],
            "findings": [
                {"tool": f.tool, **f.model_dump(exclude_none=True, exclude={"tool"})} for f in self.findings
            ],
            "citations": [{key: getattr(c, key) for key in CONTRACT_CITATION_KEYS} for c in self.citations],
        }

    # -- research and notebooks ------------------------------------------------------------
    def _images(self) -> tuple[dict[str, ImageRead], dict[str, ImageRead]]:
        """Each tool's lead image, and every image read by its SOP Instance UID."""
        leads = {t.name: t.images[0] for t in self.tools if t.images}
        by_uid = {read.sop_uid: read for t in self.tools for read in t.images}
        return leads, by_uid

    def to_records(self) -> list[FindingRecord]:
        """Every finding as a flat typed row (:class:`~copilot.schema.records.FindingRecord`),
        in answer order: its tool, label, score, threshold, value, unit, side, and the image
        (SOP Instance UID, series, view) it was read from."""
        leads, by_uid = self._images()
        records = []
        for finding in self.findings:
            tool = finding.tool or ""
            lead = leads.get(tool)
            read = by_uid.get(finding.image or (lead.sop_uid if lead else ""))
            records.append(
                finding_record(
                    finding,
                    study_uid=self.study_uid,
                    tool=tool,
                    series_uid=read.series_uid if read else "",
                    image=read.sop_uid if read else "",
                    view=read.view if read else "",
                )
            )
        return records

    def tool_records(self) -> list[ToolRecord]:
        """Every tool run as a flat typed row (:class:`~copilot.schema.records.ToolRecord`):
        status, seconds, detail, fix, its lead image and how many findings it gave."""
        leads, _ = self._images()
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.tool or ""] = counts.get(finding.tool or "", 0) + 1
        records = []
        for run in self.tools:
            lead = leads.get(run.name)
            records.append(
                ToolRecord(
                    study_uid=self.study_uid,
                    series_uid=lead.series_uid if lead else "",
                    image=lead.sop_uid if lead else "",
                    view=lead.view if lead else "",
                    tool=run.name,
                    status=run.status,
                    seconds=run.seconds,
                    detail=run.detail,
                    fix=run.fix,
                    findings=counts.get(run.name, 0),
                )
            )
        return records

    def to_pandas(self, table: AnswerTable = "findings") -> pd.DataFrame:
        """A pandas DataFrame of the answer's ``"findings"`` (:meth:`to_records`, the default),
        ``"tools"`` (:meth:`tool_records`) or ``"citations"`` (one row per cited passage).
        Raises :class:`~copilot.errors.CopilotError` when pandas is not installed
        (``pip install 'dicom-copilot[research]'``)."""
        if table == "tools":
            return to_frame(self.tool_records(), ToolRecord)
        if table == "citations":
            return to_frame(self.citations, Citation)
        return to_frame(self.to_records(), FindingRecord)

    def _tool_rows(self) -> list[list[str | float | int | None]]:
        return [[t.tool, t.status, round(t.seconds, 2), t.findings, t.detail] for t in self.tool_records()]

    def _repr_markdown_(self) -> str:
        """A notebook's view: the question, the answer's Markdown (raw HTML in it made inert)
        and a compact table of the tools that ran."""
        parts = [f"**Q:** {markdown_cell(self.question)}", markdown_text(self.text)]
        if self.tools:
            parts.append(markdown_table(_TOOL_HEADERS, self._tool_rows()))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        """A notebook's view as HTML: the question and every tool value escaped, the answer's
        Markdown rendered with its raw HTML escaped (never passed through)."""
        tools = html_table(_TOOL_HEADERS, self._tool_rows()) if self.tools else ""
        return (
            f"<div><p><strong>Q:</strong> {html.escape(self.question)}</p>"
            f"{markdown_html(self.text)}{tools}</div>"
        )
