"""Retrieval quality and latency: dense-only (MiniLM) against ours (hybrid, negation-aware),
side by side on the IU corpus.

Queries are built from MeSH terms ("cardiomegaly and pleural effusion"); precision@5 is the
fraction of top-5 reports whose MeSH terms contain every queried finding.
Usage: ``python bench/retrieval.py [--limit N]`` (N: embed only the first N reports).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

WORDS = {"Effusion": "pleural effusion", "Lung opacity": "lung opacity"}


def main() -> None:
    """Print precision@5 and p50/p95 latency for both modes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("COPILOT_DATA_DIR", tempfile.mkdtemp(prefix="copilot-bench-kb-"))
    from copilot.kb.index import KnowledgeIndex
    from copilot.text.mesh import mesh_findings

    index = KnowledgeIndex(iu_limit=args.limit)
    t = time.perf_counter()
    corpus = index.corpora()["iu-xray"]
    print(f"machine: {machine_label()}")
    print(f"index ready in {time.perf_counter() - t:.1f} s ({len(corpus.passages)} reports)")
    gold = {p.id: mesh_findings(p.mesh) for p in corpus.passages}
    counts = Counter(f for g in gold.values() for f in g)
    singles = [f for f, n in counts.most_common() if n >= 10]
    pairs = [
        c for c in itertools.combinations(singles[:6], 2) if sum(1 for g in gold.values() if set(c) <= g) >= 5
    ]
    queries = [(f,) for f in singles] + pairs
    for mode in ("dense", "hybrid"):
        precisions, latencies = [], []
        for findings in queries:
            text = " and ".join(WORDS.get(f, f.lower()) for f in findings)
            start = time.perf_counter()
            hits = index.search(text, k=5, sources=["iu-xray"], mode=mode)  # type: ignore[arg-type]
            latencies.append((time.perf_counter() - start) * 1000)
            precisions.append(sum(1 for h in hits if set(findings) <= gold.get(h.id, set())) / 5)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(
            f"{mode:7s} precision@5 {statistics.mean(precisions):.3f}  "
            f"latency p50 {statistics.median(latencies):.1f} ms  p95 {p95:.1f} ms  ({len(queries)} queries)"
        )


if __name__ == "__main__":
    main()
