"""Orchestration overhead per question, and parallel against sequential tool execution.

1. Overhead: ``Copilot.ask`` with fake tools of zero latency and the embedded planner
   (rules + MiniLM routing, warm): everything but model compute.
2. A four-tool plan whose tools each take a fixed time: our parallel execute node against
   running the same tools one after another (the way MedRAX's tool loop runs them).

Usage: ``python bench/ask.py [--questions 50] [--latency 0.25]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

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


def main() -> None:
    """Print overhead (ms per question) and the parallel/sequential ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=45)
    parser.add_argument("--latency", type=float, default=0.25)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-ask-"))
    os.environ["COPILOT_CACHE_DIR"] = str(work / "cache")
    os.environ["COPILOT_DATA_DIR"] = str(work / "data")

    from copilot.agents.planner import Plan
    from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult, invoke
    from copilot.tools.discovery import create_tools

    from copilot.api import Copilot
    from copilot.study import index_folder
    from copilot.testing import make_dicom

    def fake(name: str, latency: float) -> Tool:
        class Fake(Tool):
            manifest = ToolManifest(
                name=name,
                version="1",
                needs_image=False,
                description=create_tools()[name].manifest.description,
                questions=create_tools()[name].manifest.questions,
            )

            def run(self, request: ToolRequest) -> ToolResult:
                time.sleep(latency)
                return ToolResult(
                    tool=name,
                    findings=[
                        Finding(
                            label="Cardiomegaly",
                            score=0.7,
                            threshold=0.5,
                            above_threshold=True,
                            score_meaning="calibrated",
                        )
                    ],
                )

        return Fake()

    names = ["cxr_classifier", "lesion_segmenter", "report_generator", "vqa", "retriever"]
    study = index_folder(make_dicom(work / "s" / "a.dcm")).studies[0]
    print(f"machine: {machine_label()}")

    copilot = Copilot(tools={n: fake(n, 0.0) for n in names}, persist=False)
    copilot.ask(study, QUESTIONS[0])  # warm-up: MiniLM load, tool vectors
    times = []
    for i in range(args.questions):
        copilot.cache = type(copilot.cache)()  # no result reuse across questions
        start = time.perf_counter()
        copilot.ask(study, QUESTIONS[i % len(QUESTIONS)])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"orchestration overhead per question (embedded planner, zero-latency tools): "
        f"p50 {statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms "
        f"(aim < 50 ms)"
    )

    four = ["cxr_classifier", "lesion_segmenter", "vqa", "retriever"]
    slow = {n: fake(n, args.latency) for n in four}
    for tool in slow.values():
        tool.manifest = tool.manifest.model_copy(update={"uses": ()})  # independent tools
    parallel = Copilot(tools=slow, persist=False)
    parallel._planner = type("Fixed", (), {"plan": lambda self, *a, **k: Plan(four, "embedded")})()
    parallel.ask(study, "warm-up")
    parallel.cache = type(parallel.cache)()
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


if __name__ == "__main__":
    main()
