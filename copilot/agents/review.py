"""The adaptive second round: what the first round's results call for, from manifests only.

Two rules, each bounded by the planner's round limit:

1. **A tool could not answer for want of an input.** A tool that came back ``unavailable`` and
   whose manifest says it ``uses`` image experts that have not run (the generalist without its
   vision-language model answers from the classifier's findings; the report generator without
   its models drafts from them) gets those experts, and runs again with their results.
   So an unavailable generalist falls back to what the finding tools can say, and the answer
   names what it could not check.
2. **A "where" question found something.** When the question asks where, a finding tool
   flagged findings with a saliency region, and no location tool has used those results yet,
   the location tools run with them (the segmenter outlines the flagged findings' saliency).

Anything still unanswered after the last round is said plainly by the composer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from copilot.agents.matching import Catalogue
from copilot.tools.contract import Tool, ToolResult

__all__ = ["adaptive_round"]


def adaptive_round(
    intents: Sequence[str],
    results: Mapping[str, ToolResult],
    cat: Catalogue,
    tools: Mapping[str, Tool],
    used_inputs: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[str], list[str]]:
    """(tools to run in the next round, notes why); nothing when the answer can be written now.

    ``used_inputs`` maps each tool that ran to the results it received (``ToolRequest.prior``);
    by default a tool is taken to have used every result that was present.
    """
    run: set[str] = set()
    notes: list[str] = []
    for name, result in results.items():
        if result.status != "unavailable" or name not in tools:
            continue
        wanted = [
            u
            for u in cat.manifests[name].uses
            if u in tools and u not in results and cat.manifests[u].needs_image
        ]
        if wanted:
            run |= {*wanted, name}
            notes.append(
                f"{name} could not answer ({result.detail}); asking {', '.join(wanted)} and retrying"
            )
    if "location" in intents:
        flagged = {
            name
            for name, r in results.items()
            if r.ok and any(f.above_threshold and f.region for f in r.findings)
        }
        for locator in cat.specialists("location"):
            if locator not in tools:
                continue
            needs = set(cat.manifests[locator].uses) & flagged
            seen = set((used_inputs or {}).get(locator, results.keys() if locator in results else ()))
            if needs and not needs <= seen:
                run.add(locator)
                notes.append(f"{', '.join(sorted(needs))} flagged findings; {locator} outlines them")
    return sorted(run), notes
