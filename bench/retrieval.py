"""Retrieval quality and latency: dense-only (MiniLM) against ours (hybrid, negation-aware),
side by side on the IU corpus, plus the time the index took to build.

Queries are built from MeSH terms ("cardiomegaly and pleural effusion"); precision@5 is the
fraction of top-5 reports whose MeSH terms contain every queried finding.
Usage: ``python bench/retrieval.py [--limit N] [--vectors FILE.npy]`` (N: embed only the
first N reports; FILE: score these IU vectors, in passage order, instead of the built ones).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
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


def main() -> None:
    """Print the build time, then precision@5 and p50/p95 latency for both modes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--vectors", type=Path, help="score these IU vectors (.npy) instead")
    args = parser.parse_args()
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
