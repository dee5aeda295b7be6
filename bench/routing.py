"""Routing accuracy on the held-out part of tests/data/routing_questions.jsonl, ours against the
planner as it was before (the last commit with the rules + MiniLM planner, or --old-ref),
side by side, and the invariance pass rate (tests/data/routing_invariance.jsonl: paraphrase
groups by clause order, synonyms, spelling, typos, bones and devices).

A question is routed right when the planned tools equal its labelled tools: every needed tool
planned and none that cannot bear on it (header and greeting questions: an empty plan, the
header answering). Printed: overall and per source, per gold intent (questions carrying that
intent routed right), per tool (accuracy of planning it or not, precision, recall) and, for
ours, the intent classifier's per-intent F1. Only the built-in tools are installed for both
planners, so plug-ins on this machine do not change the numbers.

Usage: ``python bench/routing.py [--split heldout|train|all] [--old-ref REF] [--no-old] [--errors N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _machine import machine_label  # noqa: E402

DATA = ROOT / "tests" / "data" / "routing_questions.jsonl"
#: Groups of paraphrases that must get one plan (tests/test_routing_invariance.py).
INVARIANCE = ROOT / "tests" / "data" / "routing_invariance.jsonl"
#: The brief's five chest X-ray tools, deliberately not every built-in
#: (:data:`copilot.tools.builtin.BUILTIN_TOOLS`): the labelled routing set names only these.
CXR_TOOLS = ("cxr_classifier", "lesion_segmenter", "report_generator", "vqa", "retriever")


def load(split: str) -> list[dict]:
    """Rows of the labelled set for ``split``."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    return rows if split == "all" else [r for r in rows if r["split"] == split]


def rule_planner_ref() -> str:
    """The newest commit whose agents/planner.py is still the rules + MiniLM planner."""
    log = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%H", "--", "agents/planner.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for ref in log:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:agents/planner.py"], capture_output=True, text=True
        ).stdout
        if "SEMANTIC_THRESHOLD" in text:
            return ref[:12]
    raise SystemExit("no commit with the rules + MiniLM planner found; pass --old-ref")


def old_planner(ref: str) -> Callable[[str, dict], list[str]]:
    """The embedded planner of git ``ref`` (rules + MiniLM semantic routing), loaded from git."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:agents/planner.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("old_planner")
    module.__file__ = f"{ref}:agents/planner.py"
    sys.modules["old_planner"] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    from copilot.config import get_settings

    planner = module.EmbeddedPlanner(get_settings())
    return lambda q, tools: list(planner.plan(q, tools).tools)


def our_planner() -> Callable[[str, dict], list[str]]:
    """The embedded planner of this checkout."""
    from copilot.agents.planner import EmbeddedPlanner

    planner = EmbeddedPlanner()
    return lambda q, tools: list(planner.plan(q, tools).tools)


def score(rows: list[dict], plans: list[list[str]]) -> dict:
    """Accuracy overall, per source, per gold intent and per tool."""
    right = [set(p) == set(r["tools"]) for r, p in zip(rows, plans, strict=True)]
    by_source: dict[str, list[bool]] = defaultdict(list)
    by_intent: dict[str, list[bool]] = defaultdict(list)
    for r, ok in zip(rows, right, strict=True):
        by_source[r["source"].split("/")[0]].append(ok)
        for intent in r["intents"]:
            by_intent[intent].append(ok)
    tools: dict[str, Counter] = {t: Counter() for t in CXR_TOOLS}
    for r, p in zip(rows, plans, strict=True):
        for t in CXR_TOOLS:
            gold, got = t in r["tools"], t in p
            tools[t]["tp" if gold and got else "fp" if got else "fn" if gold else "tn"] += 1
    return {"overall": right, "source": by_source, "intent": by_intent, "tools": tools}


def invariance(
    plan: Callable[[str, dict], list[str]], tools: dict
) -> tuple[list[bool], dict[str, list[bool]]]:
    """Per paraphrase group of :data:`INVARIANCE`: did every question get the group's plan?
    Overall and per kind (clause order, synonyms, spelling, typos, bones, devices...)."""
    ok, by_kind = [], defaultdict(list)
    for line in INVARIANCE.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        group = json.loads(line)
        passed = all(sorted(plan(q, tools)) == sorted(group["tools"]) for q in group["questions"])
        ok.append(passed)
        by_kind[group["kind"]].append(passed)
    return ok, by_kind


def pct(values: Iterable[bool]) -> str:
    """'87.3% (n=120)'."""
    v = list(values)
    return f"{100 * sum(v) / len(v):5.1f}% (n={len(v)})" if v else "   -"


def intent_f1(rows: list[dict]) -> dict[str, tuple[float, int]]:
    """Per-intent F1 of the router's intent classifier on single-part questions."""
    from copilot.routing.analysis import analyze
    from copilot.routing.text import normalise, split_parts

    counts: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if len(split_parts(normalise(r["question"]))) != 1:
            continue
        got = set(analyze(r["question"]).intents)
        for intent in set(r["intents"]) | got:
            counts[intent][
                "tp" if intent in got and intent in r["intents"] else "fp" if intent in got else "fn"
            ] += 1
    out = {}
    for intent, c in counts.items():
        out[intent] = (2 * c["tp"] / max(1, 2 * c["tp"] + c["fp"] + c["fn"]), c["tp"] + c["fn"])
    return out


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="heldout", choices=["heldout", "train", "all"])
    parser.add_argument(
        "--old-ref",
        default=None,
        help="git ref of the planner to compare with (default: the last rules planner)",
    )
    parser.add_argument("--no-old", action="store_true", help="skip the old planner (it loads MiniLM)")
    parser.add_argument("--errors", type=int, default=0, help="print this many of our misroutes")
    args = parser.parse_args()
    from copilot.tools.discovery import create_tools

    tools = {k: v for k, v in create_tools().items() if k in CXR_TOOLS}
    rows = load(args.split)
    print(f"machine: {machine_label()}")
    print(f"{len(rows)} questions ({args.split} split of {DATA.relative_to(ROOT)})")
    planners = {"ours": our_planner()}
    if not args.no_old:
        ref = args.old_ref or rule_planner_ref()
        planners[f"old ({ref[:7]})"] = old_planner(ref)
    from copilot.routing.model import load_model

    intents = load_model()
    start = time.perf_counter()
    for r in rows:
        intents.predict(r["question"])
    per_q = (time.perf_counter() - start) / max(1, len(rows)) * 1000
    print(f"intent classifier alone: {per_q:.2f} ms per question")
    results, plans_by = {}, {}
    for name, plan in planners.items():
        start = time.perf_counter()
        plans = [plan(r["question"], tools) for r in rows]
        per_q = (time.perf_counter() - start) / max(1, len(rows)) * 1000
        results[name] = score(rows, plans)
        plans_by[name] = plans
        print(f"{name}: {per_q:.1f} ms per question")
    names = list(results)
    width = 22
    print("\nrouted right (planned tools == labelled tools)")
    print(" " * 26 + "".join(n.ljust(width) for n in names))
    print("overall".ljust(26) + "".join(pct(results[n]["overall"]).ljust(width) for n in names))
    for source in sorted(results["ours"]["source"]):
        print(
            f"  source {source}".ljust(26)
            + "".join(pct(results[n]["source"][source]).ljust(width) for n in names)
        )
    print("\nper gold intent")
    for intent in sorted(results["ours"]["intent"], key=lambda i: -len(results["ours"]["intent"][i])):
        print(
            f"  {intent}".ljust(26) + "".join(pct(results[n]["intent"][intent]).ljust(width) for n in names)
        )
    print("\nper tool: accuracy (planned or not, as labelled) / precision / recall")
    for t in CXR_TOOLS:
        cells = []
        for n in names:
            c = results[n]["tools"][t]
            acc = (c["tp"] + c["tn"]) / max(1, sum(c.values()))
            prec = c["tp"] / max(1, c["tp"] + c["fp"])
            rec = c["tp"] / max(1, c["tp"] + c["fn"])
            cells.append(f"{100 * acc:5.1f} / {100 * prec:5.1f} / {100 * rec:5.1f}".ljust(width))
        print(f"  {t} (n={c['tp'] + c['fn']})".ljust(26) + "".join(cells))
    print("\ninvariance: paraphrase groups whose every question gets the group's plan")
    inv = {n: invariance(planners[n], tools) for n in names}
    print("overall".ljust(26) + "".join(pct(inv[n][0]).ljust(width) for n in names))
    for kind in inv["ours"][1]:
        print(f"  {kind}".ljust(26) + "".join(pct(inv[n][1].get(kind, [])).ljust(width) for n in names))
    print("\nours: intent classifier F1 (single-part questions)")
    for intent, (f1, n) in sorted(intent_f1(rows).items(), key=lambda kv: -kv[1][1]):
        print(f"  {intent}".ljust(26) + f"{f1:.3f} (n={n})")
    if args.errors:
        print("\nour misroutes")
        shown = 0
        for r, p in zip(rows, plans_by["ours"], strict=True):
            if set(p) != set(r["tools"]) and shown < args.errors:
                shown += 1
                print(
                    f"  {r['question']!r}: planned {sorted(p)}, labelled {r['tools']} "
                    f"({', '.join(r['intents'])})"
                )


if __name__ == "__main__":
    main()
