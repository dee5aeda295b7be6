"""The LLM planner on a real local model beside the embedded planner: prompt tokens, latency
and routing accuracy on held-out questions, side by side.

The model is served by llama.cpp's ``llama-server`` (``tests/llm/install-llm-server.sh``
installs it and the GGUF models; ``--with-1.5b`` adds the 1.5B), started here on a free port with
the flags of ``../shared/real-llm.md`` and reached by the real ``langchain-openai`` client, as
``copilot plan --llm`` reaches it. Questions: the held-out ``paraphrase`` questions of
``tests/data/routing_questions.jsonl`` (written for this project; never a benchmark's text),
spread evenly when ``--limit`` is smaller than the set. A question is routed right when the
planned tools equal its labelled tools, as in ``bench/routing.py``; only the brief's five chest
X-ray tools are installed for both planners.

Printed per planner: routed right, median and 90th-percentile latency, the LLM's prompt and
completion tokens per question (from the server's usage counts), how many LLM plans were its
own, fell back to the embedded planner or came back empty; then the LLM/embedded latency ratio.
Absolute figures are labelled with the machine. The first LLM question pays for a cold prompt;
its latency is shown apart.

Usage: ``python bench/llm.py [--model 0.5b|1.5b|PATH] [--limit N] [--timeout S]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _machine import machine_label  # noqa: E402
from routing import CXR_TOOLS, DATA, load  # noqa: E402

from tests.support.llm_server import MODELS, LlamaServer, model_path  # noqa: E402


def questions(limit: int) -> list[dict[str, Any]]:
    """Held-out paraphrase rows, ``limit`` of them spread evenly over the set (0: all)."""
    rows = [r for r in load("heldout") if r["source"] == "paraphrase"]
    if not limit or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def default_model() -> str:
    """The 1.5B when installed (it plans better), else the 0.5B."""
    path, _alias = model_path("1.5b")
    return "1.5b" if path.is_file() else "0.5b"


def pct(values: list[bool]) -> str:
    """'41.7% (n=12)'."""
    return f"{100 * sum(values) / len(values):5.1f}% (n={len(values)})" if values else "-"


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_embedded(rows: list[dict[str, Any]], tools: dict[str, Any]) -> tuple[list[bool], list[float]]:
    """(routed right, seconds) per question for the embedded planner."""
    from copilot.agents.planner import EmbeddedPlanner

    planner = EmbeddedPlanner()
    planner.plan("warm up the router", tools)
    right, seconds = [], []
    for r in rows:
        start = time.perf_counter()
        plan = planner.plan(r["question"], tools)
        seconds.append(time.perf_counter() - start)
        right.append(set(plan.tools) == set(r["tools"]))
    return right, seconds


def run_llm(rows: list[dict[str, Any]], tools: dict[str, Any], spec: str, timeout_s: float) -> dict[str, Any]:
    """Per question: routed right, seconds, prompt and completion tokens, how it was planned."""
    from langchain_core.callbacks import get_usage_metadata_callback

    from copilot.agents.planner import EmbeddedPlanner, LLMPlanner
    from copilot.config import Settings
    from copilot.llm import load_llm
    from copilot.text.redact import Redactor

    settings = Settings(llm_timeout_s=timeout_s, llm_max_retries=0)
    planner = LLMPlanner(load_llm(spec, settings), EmbeddedPlanner(settings))
    redact = Redactor(trusted=False)
    out: dict[str, Any] = {"right": [], "seconds": [], "prompt": [], "completion": [], "how": []}
    for r in rows:
        with get_usage_metadata_callback() as usage:
            start = time.perf_counter()
            plan = planner.plan(r["question"], tools, redact=redact)
            out["seconds"].append(time.perf_counter() - start)
        counts = list(usage.usage_metadata.values())
        out["prompt"].append(sum(c.get("input_tokens", 0) for c in counts))
        out["completion"].append(sum(c.get("output_tokens", 0) for c in counts))
        out["right"].append(set(plan.tools) == set(r["tools"]))
        out["how"].append("fallback" if plan.planner != "llm" else "own" if plan.tools else "empty")
    return out


def main() -> None:
    """Start the server, plan every question with both planners, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help=f"{' or '.join(MODELS)} or a GGUF path (default: 1.5b if installed)"
    )
    parser.add_argument("--limit", type=int, default=24, help="questions (0: all held-out paraphrases)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per LLM request")
    args = parser.parse_args()
    model = args.model or default_model()
    reason = LlamaServer.missing(model)
    if reason:
        raise SystemExit(f"bench/llm.py: {reason}")
    from copilot.tools.discovery import create_tools

    tools = {k: v for k, v in create_tools().items() if k in CXR_TOOLS}
    rows = questions(args.limit)
    print(f"machine: {machine_label()}")
    print(f"platform: {platform.platform()}, {os.cpu_count()} CPUs (absolute figures are this machine's)")
    print(f"{len(rows)} held-out paraphrase questions of {DATA.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        server = LlamaServer.start(Path(tmp))
        try:
            print(f"model: {server.model.name} as {server.spec}; server healthy after {server.start_s:.1f}s")
            os.environ["OPENAI_BASE_URL"] = server.base_url
            os.environ.pop("OPENAI_API_KEY", None)
            embedded_right, embedded_s = run_embedded(rows, tools)
            llm = run_llm(rows, tools, server.spec, args.timeout)
        finally:
            server.stop()
    warm = llm["seconds"][1:] or llm["seconds"]
    width = 26
    print("\n" + " " * 30 + "embedded".ljust(width) + "llm")
    print("routed right".ljust(30) + pct(embedded_right).ljust(width) + pct(llm["right"]))
    print(
        "latency median / p90 (s)".ljust(30)
        + f"{statistics.median(embedded_s):.4f} / {quantile(embedded_s, 0.9):.4f}".ljust(width)
        + f"{statistics.median(warm):.2f} / {quantile(warm, 0.9):.2f} (first, cold: {llm['seconds'][0]:.1f})"
    )
    print(
        "prompt tokens per question".ljust(30)
        + "-".ljust(width)
        + f"{statistics.mean(llm['prompt']):.0f} (max {max(llm['prompt'])})"
    )
    print(
        "completion tokens per question".ljust(30)
        + "-".ljust(width)
        + f"{statistics.mean(llm['completion']):.0f}"
    )
    hows = llm["how"]
    print(
        "llm plans: own / fallback / empty".ljust(30)
        + "-".ljust(width)
        + f"{hows.count('own')} / {hows.count('fallback')} / {hows.count('empty')}"
    )
    ratio = statistics.median(warm) / max(statistics.median(embedded_s), 1e-9)
    print(f"\nllm / embedded median latency: {ratio:,.0f}x")


if __name__ == "__main__":
    main()
