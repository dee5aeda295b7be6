"""The statements of a tool that read several views of a study: each of its statements says
the view it comes from ("On the lateral: ..."), a view it could not read is said, and a scored
finding that is above its threshold on one view and below it on another is said to disagree.

The tool words each view's result itself (its ``statements()``); this module only names the
view and compares the scores the tool produced. It states no finding of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from copilot.schema import Finding, Statement, ToolResult, ViewResult
from copilot.study.views import view_words
from copilot.tools.statements import Question

__all__ = ["disagreements", "view_statements"]


def _on(view: str) -> str:
    return f"On the {view_words(view)}"


def view_statements(
    name: str,
    reads: Sequence[ViewResult],
    question: Question,
    word: Callable[[ToolResult], list[Statement]],
    why: Callable[[ToolResult], str],
) -> list[Statement]:
    """Every view's statements (worded by ``word``, the tool's own wording), each naming its
    view and image, a line for each view that was not read (``why`` says why), then where the
    views disagree."""
    out: list[Statement] = []
    for read in reads:
        where = _on(read.image.view)
        if not read.result.ok:
            out.append(
                Statement(
                    text=f"{where}: not read ({why(read.result)}).",
                    tool=name,
                    section="findings",
                    assertion=False,
                    image=read.image.sop_uid,
                )
            )
            continue
        for s in word(read.result):
            if s.citation is not None or s.section == "background":
                out.append(s)  # a passage is not about one view
                continue
            out.append(s.model_copy(update={"text": f"{where}: {s.text}", "image": read.image.sop_uid}))
    return out + disagreements(name, reads, question)


def _score(view: str, f: Finding) -> str:
    threshold = f" {f.threshold:g}" if f.threshold is not None else ""
    side = "above" if f.above_threshold else "below"
    return f"{f.score or 0.0:.2f} on the {view_words(view)} ({side} its{threshold} threshold)"


def disagreements(name: str, reads: Sequence[ViewResult], question: Question) -> list[Statement]:
    """One statement per scored finding the tool put above its threshold on one view and below
    it on another, with every view's score (not an assertion: it reports the tool's scores)."""
    seen: dict[str, list[tuple[str, Finding]]] = {}
    for read in reads:
        if not read.result.ok:
            continue
        for f in read.result.findings:
            if f.score is not None and f.above_threshold is not None:
                seen.setdefault(f.label, []).append((read.image.view, f))
    asked = {label.lower() for label in question.findings}
    out = []
    for label, scores in seen.items():
        if len({f.above_threshold for _, f in scores}) < 2:
            continue
        listed = "; ".join(_score(view, f) for view, f in scores)
        out.append(
            Statement(
                text=f"{label} {listed}: the views disagree.",
                tool=name,
                section="answer" if label.lower() in asked else "findings",
                assertion=False,
                label=label,
            )
        )
    return out
