"""``check_tool``: the contract check a plug-in author runs in their own tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from copilot.availability import Availability
from copilot.tools.contract import Tool, ToolRequest, ToolResult
from copilot.tools.invoke import invoke, invoke_batch

HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "monai")


@dataclass
class ContractReport:
    """What ``check_tool`` found: a list of problems, empty when the tool honours the contract."""

    tool: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise AssertionError listing every problem (for use in tests)."""
        if self.problems:
            raise AssertionError(f"{self.tool} breaks the tool contract:\n- " + "\n- ".join(self.problems))


def _comparable(result: ToolResult) -> dict[str, object]:
    data = result.model_dump(exclude={"seconds", "provenance"})
    return data


def check_tool(
    tool_cls: type[Tool],
    requests: Sequence[ToolRequest] = (),
    *,
    max_construct_s: float = 0.5,
) -> ContractReport:
    """Check a tool class against the contract.

    Checks: the manifest is complete; construction is cheap (fast, imports no heavy module that
    was not already imported, loads nothing); ``available()`` answers with a reason and fix when
    unavailable; and, for each request given, results are well formed and ``run_batch`` equals
    ``run`` one by one.
    """
    name = getattr(getattr(tool_cls, "manifest", None), "name", tool_cls.__name__)
    report = ContractReport(tool=name)
    manifest = getattr(tool_cls, "manifest", None)
    if manifest is None:
        report.problems.append("no manifest")
        return report
    if not manifest.questions:
        report.problems.append("manifest lists no example questions (the planner routes on them)")
    if len(manifest.description.split()) < 8:
        report.problems.append("manifest description is too short for the planner to use")
    if manifest.needs_image and not manifest.modalities:
        report.notes.append("accepts every modality; declare modalities to refuse unsuitable images")

    before = {m for m in HEAVY_MODULES if m in sys.modules}
    start = time.perf_counter()
    try:
        tool = tool_cls()
    except Exception as exc:
        report.problems.append(f"constructor raised {type(exc).__name__}: {exc}")
        return report
    elapsed = time.perf_counter() - start
    if elapsed > max_construct_s:
        report.problems.append(f"constructor took {elapsed:.2f}s (must be cheap: load in setup())")
    newly = {m for m in HEAVY_MODULES if m in sys.modules} - before
    if newly:
        report.problems.append(f"constructor imported {', '.join(sorted(newly))} (import lazily)")
    if getattr(tool, "_ready", False):
        report.problems.append("constructor already ran setup()")

    availability = tool.available()
    if not isinstance(availability, Availability):
        report.problems.append("available() must return copilot.tools.Availability")
        return report
    if not availability.ok:
        if not availability.reason:
            report.problems.append("available() is False without a reason")
        if not availability.fix:
            report.notes.append("unavailable without a fix command")
        report.notes.append(f"unavailable here: {availability.reason}")
        return report

    singles = [invoke(tool, r) for r in requests]
    for res in singles:
        if res.tool != name:
            report.problems.append(f"result names tool {res.tool!r}, expected {name!r}")
        if res.status == "error":
            report.problems.append(f"run() failed: {res.detail}")
        for finding in res.findings:
            if finding.score is not None and finding.score_meaning is None:
                report.problems.append(f"finding {finding.label!r} has a score but no score_meaning")
    if requests:
        batch = invoke_batch(tool, list(requests))
        if [_comparable(r) for r in batch] != [_comparable(r) for r in singles]:
            report.problems.append("run_batch() results differ from run() one by one")
    return report
