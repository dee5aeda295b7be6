"""Start-up and orchestration timings of planning and asking, side by side with the planner
as it was before (the rules + MiniLM planner of the last commit that had it).

1. ``copilot plan "Q"`` as a whole process, cold (first run after the page cache was warmed by
   nothing else of ours) and warm, ours against the old planner (loaded from git into the same
   CLI path); aim < 1 s.
2. The planner ready in-process (import, tool discovery, first plan), in a fresh interpreter;
   aim < 300 ms.
3. ``copilot ask STUDY "Q"`` as a whole process when the tool results are cached (the second
   ask about the same image and question); aim < 2 s.
4. Orchestration overhead per question with zero-latency tools (everything but model compute).
5. A four-tool plan whose tools each take a fixed time: the parallel execute node against the
   same tools one after another (the way MedRAX's tool loop runs them).

Usage: ``python bench/ask.py [--runs 5] [--questions 45] [--latency 0.25] [--no-old]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _machine import machine_label  # noqa: E402

QUESTIONS = [
    "Is there cardiomegaly, and what could cause it?",
    "r/o ptx",
    "Is there a pleural effusion?",
    "How big is the heart?",
    "Any consolidation or pneumonia?",
    "hello",
    "which series are there?",
    "Is there air in the pleural space?",
    "What is the differential for this opacity?",
]
COPILOT = [sys.executable, "-m", "copilot"]
OLD_PLAN = """
import json, subprocess, sys, types
from pathlib import Path
root = Path(sys.argv[1])
source = subprocess.run(["git", "-C", str(root), "show", sys.argv[2] + ":agents/planner.py"],
                        check=True, capture_output=True, text=True).stdout
module = types.ModuleType("old_planner")
sys.modules["old_planner"] = module
exec(compile(source, "old_planner.py", "exec"), module.__dict__)
from copilot.api import Copilot
copilot = Copilot()
tools = copilot.tools
plan = module.EmbeddedPlanner(copilot.settings).plan(sys.argv[3], tools)
print(json.dumps({"tools": plan.tools, "planner": "embedded"}))
"""
READY = """
import time
start = time.perf_counter()
from copilot.agents.planner import EmbeddedPlanner
from copilot.tools.discovery import create_tools
tools = create_tools()
plan = EmbeddedPlanner().plan("Is there a pneumothorax?", tools)
print(f"{(time.perf_counter() - start) * 1000:.1f}")
"""


def timed(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    """Wall seconds of one process (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, input=stdin, timeout=600)
    return time.perf_counter() - start


def summary(values: list[float], unit: str = "s") -> str:
    """'first 0.62 s, median 0.55 s, max 0.70 s (n=5)'."""
    return (
        f"first {values[0]:.2f} {unit}, median {statistics.median(values):.2f} {unit}, "
        f"max {max(values):.2f} {unit} (n={len(values)})"
    )


def startup(args: argparse.Namespace, env: dict[str, str], work: Path) -> None:
    """Sections 1-3: whole processes."""
    question = "Is there a pneumothorax?"
    ours = [timed([*COPILOT, "plan", question, "--json"], env) for _ in range(args.runs)]
    print(f"copilot plan (ours, whole process): {summary(ours)}  (aim < 1 s)")
    if not args.no_old:
        from routing import rule_planner_ref

        ref = rule_planner_ref()
        old = [
            timed([sys.executable, "-c", OLD_PLAN, str(ROOT), ref, question], env)
            for _ in range(max(2, args.runs // 2))
        ]
        print(f"copilot plan (old planner {ref[:7]}, whole process): {summary(old)}")
    ready = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", READY], check=True, capture_output=True, text=True, env=env
        )
        ready.append(float(out.stdout.strip()))
    print(
        f"planner ready in-process (import + discovery + first plan): {summary(ready, 'ms')}  (aim < 300 ms)"
    )

    from copilot.testing import make_dicom

    folder = work / "study"
    make_dicom(folder / "a.dcm")
    ask = [*COPILOT, "ask", str(folder), "What could cause cardiomegaly?", "--json"]
    first = timed(ask, env)
    cached = [timed(ask, env) for _ in range(args.runs)]
    print(
        f"copilot ask, first run (knowledge base of {env['COPILOT_KB_IU_LIMIT']} reports built, tools run): "
        f"{first:.2f} s"
    )
    print(f"copilot ask, tool results cached (whole process): {summary(cached)}  (aim < 2 s)")


def orchestration(args: argparse.Namespace, work: Path) -> None:
    """Sections 4-5: in-process, fake tools."""
    from copilot.agents.context import ResultCache
    from copilot.agents.planner import Plan
    from copilot.api import Copilot
    from copilot.study import index_folder
    from copilot.testing import make_dicom
    from copilot.tools import Finding, Tool, ToolRequest, ToolResult, invoke
    from copilot.tools.discovery import create_tools

    real = create_tools()

    def fake(name: str, latency: float) -> Tool:
        class Fake(Tool):
            manifest = real[name].manifest.model_copy(update={"needs_image": False, "models": ()})

            def run(self, request: ToolRequest) -> ToolResult:
                time.sleep(latency)
                finding = Finding(
                    label="Cardiomegaly",
                    score=0.7,
                    threshold=0.5,
                    above_threshold=True,
                    score_meaning="calibrated",
                )
                return ToolResult(tool=name, findings=[finding])

        return Fake()

    def fresh_cache() -> ResultCache:
        cache = ResultCache()
        cache.persist(Path(tempfile.mkdtemp(prefix="results-", dir=work)))
        return cache

    # The brief's five chest X-ray tools (faked), deliberately not every built-in: the figure is
    # the overhead of the brief's question flow.
    names = ["cxr_classifier", "lesion_segmenter", "report_generator", "vqa", "retriever"]
    study = index_folder(make_dicom(work / "s" / "a.dcm")).studies[0]
    copilot = Copilot(tools={n: fake(n, 0.0) for n in names}, persist=False)
    copilot.ask(study, QUESTIONS[0])  # warm-up: graph compile, routing model
    times = []
    for i in range(args.questions):
        copilot.cache = fresh_cache()  # no result reuse across questions
        start = time.perf_counter()
        copilot.ask(study, QUESTIONS[i % len(QUESTIONS)])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"orchestration overhead per question (embedded planner, zero-latency tools): "
        f"p50 {statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms (aim < 50 "
        f"ms)"
    )

    four = ["cxr_classifier", "lesion_segmenter", "vqa", "retriever"]
    slow = {n: fake(n, args.latency) for n in four}
    for tool in slow.values():
        tool.manifest = tool.manifest.model_copy(update={"uses": ()})  # independent tools

    class Fixed:
        """Plans the four tools, whatever the question (a :class:`~copilot.agents.planner.Planner`)."""

        def plan(self, *args: object, **kwargs: object) -> Plan:
            return Plan(four, "embedded")

    parallel = Copilot(tools=slow, persist=False, planner=Fixed())
    parallel.ask(study, "warm-up")
    parallel.cache = fresh_cache()
    start = time.perf_counter()
    parallel.ask(study, "four tools")
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for name in four:  # the sequential tool loop
        invoke(slow[name], ToolRequest(question="four tools", instance=study.primary_instance()))
    sequential = time.perf_counter() - start
    print(
        f"four tools of {args.latency:.2f} s each: sequential {sequential:.2f} s, ours (parallel) "
        f"{ours:.2f} s, ratio {sequential / ours:.2f}x (slowest tool {args.latency:.2f} s)"
    )


def main() -> None:
    """Print every figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--questions", type=int, default=45)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--no-old", action="store_true", help="skip the old planner (it loads MiniLM)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-ask-"))
    env = {
        **os.environ,
        "COPILOT_CACHE_DIR": str(work / "cache"),
        "COPILOT_DATA_DIR": str(work / "data"),
        "COPILOT_CONFIG_DIR": str(work / "config"),
        "COPILOT_KB_IU_LIMIT": os.environ.get("COPILOT_KB_IU_LIMIT", "300"),
        "COPILOT_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update({k: env[k] for k in ("COPILOT_CACHE_DIR", "COPILOT_DATA_DIR", "COPILOT_CONFIG_DIR")})
    print(f"machine: {machine_label()}")
    startup(args, env, work)
    orchestration(args, work)


if __name__ == "__main__":
    main()
