"""Retrieval quality and latency: dense-only (MiniLM) against ours (hybrid, negation-aware),
side by side on the IU corpus, plus the time the index took to build.

Queries are built from MeSH terms ("cardiomegaly and pleural effusion"); precision@5 is the
fraction of top-5 reports whose MeSH terms contain every queried finding.
Usage: ``python bench/retrieval.py [--limit N] [--vectors FILE.npy]`` (N: embed only the
first N reports; FILE: score these IU vectors, in passage order, instead of the built ones).

``--compare BASELINE`` (a checkout of the previous code, e.g. ``git archive main | tar -x -C
DIR``) prints the two side by side, each in fresh processes with a fresh data folder, on the
machine named in the first line: ``copilot kb build`` time, ``copilot kb search`` and a
knowledge ``copilot ask`` (wall time and peak memory of the process, median of 3 with an empty
result cache), and precision@5 of the hybrid and dense searches on the IU finding queries.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

WORDS = {"Effusion": "pleural effusion", "Lung opacity": "lung opacity"}


def finding_queries(corpus: Any) -> tuple[list[tuple[str, ...]], dict[str, set[str]]]:
    """The finding queries (single findings with >= 10 reports, pairs of the six commonest
    with >= 5) and each report's gold findings (from its MeSH terms)."""
    from copilot.text.mesh import mesh_findings

    gold: dict[str, set[str]] = {p.id: set(mesh_findings(p.mesh)) for p in corpus.passages}
    counts = Counter(f for g in gold.values() for f in g)
    singles = [f for f, n in counts.most_common() if n >= 10]
    queries: list[tuple[str, ...]] = [(f,) for f in singles]
    queries += [
        c for c in itertools.combinations(singles[:6], 2) if sum(1 for g in gold.values() if set(c) <= g) >= 5
    ]
    return queries, gold


def evaluate(index: Any, mode: str) -> tuple[float, list[float]]:
    """Mean precision@5 of ``mode`` over the finding queries, and each query's latency (ms)."""
    queries, gold = finding_queries(index.corpora()["iu-xray"])
    precisions, latencies = [], []
    for findings in queries:
        text = " and ".join(WORDS.get(f, f.lower()) for f in findings)
        start = time.perf_counter()
        hits = index.search(text, k=5, sources=["iu-xray"], mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        precisions.append(sum(1 for h in hits if set(findings) <= gold.get(h.id, set())) / 5)
    return statistics.mean(precisions), latencies


ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT.parent / "shared" / "data" / "demo-studies"
ASK = "What causes atelectasis?"
SEARCH = "pleural effusion"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``: (wall seconds, peak memory in MB, stdout); raises when it fails."""
    start = time.perf_counter()
    cwd = env["PYTHONPATH"]  # "python -m copilot" imports from the working folder first
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def side(code: Path, limit: int | None) -> dict[str, Any]:
    """Build, search, ask and precision for the code in ``code``, in fresh processes."""
    data = tempfile.mkdtemp(prefix="copilot-bench-side-")
    env = dict(os.environ, PYTHONPATH=str(code), COPILOT_DATA_DIR=data, COPILOT_OFFLINE="1")
    if limit is not None:
        env["COPILOT_KB_IU_LIMIT"] = str(limit)
    copilot = [sys.executable, "-m", "copilot"]
    build, build_mb, _ = timed([*copilot, "kb", "build", "--json"], env)
    search = [timed([*copilot, "kb", "search", SEARCH, "--json"], env)[:2] for _ in range(3)]
    study = next(p for p in sorted(STUDIES.iterdir()) if p.is_dir())
    asks = []
    for _ in range(3):
        cache = dict(env, COPILOT_CACHE_DIR=tempfile.mkdtemp(prefix="copilot-bench-cache-"))
        asks.append(timed([*copilot, "ask", str(study), ASK, "--json"], cache)[:2])
    _, _, out = timed([sys.executable, __file__, "--precision-json"], env)
    return {
        "build": (build, build_mb),
        "search": tuple(statistics.median(x) for x in zip(*search, strict=True)),
        "ask": tuple(statistics.median(x) for x in zip(*asks, strict=True)),
        **json.loads(out.strip().splitlines()[-1]),
    }


def compare(baseline: Path, limit: int | None) -> None:
    """Print the baseline's and this tree's figures side by side."""
    print(f"machine: {machine_label()}")
    print(f"ask: {ASK!r} on {STUDIES.name}; search: {SEARCH!r}; fresh process each, median of 3")
    before, after = side(baseline, limit), side(ROOT, limit)
    rows = [
        ("kb build (s, peak MB)", "build", "{:.1f} s, {:.0f} MB"),
        ("kb search (s, peak MB)", "search", "{:.2f} s, {:.0f} MB"),
        ("knowledge ask (s, peak MB)", "ask", "{:.2f} s, {:.0f} MB"),
    ]
    print(f"{'':28s} {'before (' + baseline.name + ')':>32s} {'after (this tree)':>24s}")
    for title, key, form in rows:
        print(f"{title:28s} {form.format(*before[key]):>32s} {form.format(*after[key]):>24s}")
    for mode in ("hybrid", "dense"):
        print(f"{'precision@5 ' + mode:28s} {before[mode]:>32.3f} {after[mode]:>24.3f}")


def main() -> None:
    """Print the build time, then precision@5 and p50/p95 latency for both modes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--vectors", type=Path, help="score these IU vectors (.npy) instead")
    parser.add_argument("--compare", type=Path, help="a checkout of the previous code: side by side")
    parser.add_argument("--precision-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        compare(args.compare.resolve(), args.limit)
        return
    if args.precision_json:  # one side of --compare: the index is built already
        from copilot.kb.index import KnowledgeIndex

        ready = KnowledgeIndex(iu_limit=args.limit)
        print(json.dumps({mode: evaluate(ready, mode)[0] for mode in ("hybrid", "dense")}))
        return
    if "COPILOT_DATA_DIR" not in os.environ:  # a fresh index, built (and timed) by this run
        os.environ["COPILOT_DATA_DIR"] = tempfile.mkdtemp(prefix="copilot-bench-kb-")
    import numpy as np

    from copilot.kb.index import KnowledgeIndex

    index = KnowledgeIndex(iu_limit=args.limit)
    wall, cpu = time.perf_counter(), time.process_time()
    corpus = index.corpora()["iu-xray"]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"machine: {machine_label()}")
    print(f"index ready in {wall:.1f} s wall, {cpu:.1f} s CPU ({len(corpus.passages)} reports)")
    if args.vectors:
        vectors = np.load(args.vectors)
        if vectors.shape != corpus.vectors.shape:
            raise SystemExit(f"{args.vectors}: shape {vectors.shape}, expected {corpus.vectors.shape}")
        corpus.vectors = vectors.astype(np.float32)
        print(f"scoring the vectors of {args.vectors}")
    queries, _ = finding_queries(corpus)
    for mode in ("dense", "hybrid"):
        precision, latencies = evaluate(index, mode)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(
            f"{mode:7s} precision@5 {precision:.3f}  "
            f"latency p50 {statistics.median(latencies):.1f} ms  p95 {p95:.1f} ms  ({len(queries)} queries)"
        )


if __name__ == "__main__":
    main()
