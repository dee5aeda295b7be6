"""Report labeler quality against the IU corpus's MeSH terms (assigned by annotators from the
text): per-finding precision, recall and F1 of "stated present", and the macro F1.

Usage: ``python bench/labeler.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label


def main() -> None:
    """Print the per-finding table and the macro F1."""
    from copilot.kb.corpus import default_iu_path, read_iu_reports
    from copilot.text.labeler import label_text
    from copilot.text.mesh import MESH_TO_FINDING, mesh_findings

    path = default_iu_path()
    if path is None:
        sys.exit("NLMCXR_reports.tgz not found (install torchxrayvision)")
    start = time.perf_counter()
    rows = [
        (mesh_findings(p.mesh), {k for k, v in label_text(p.text).items() if v == "present"})
        for p in read_iu_reports(path)
    ]
    seconds = time.perf_counter() - start
    print(f"machine: {machine_label()}")
    print(f"{len(rows)} reports labelled in {seconds:.1f} s ({len(rows) / seconds:.0f} reports/s)")
    print(f"{'finding':16s} {'support':>7s} {'P':>5s} {'R':>5s} {'F1':>5s}")
    f1s = []
    for label in sorted(set(MESH_TO_FINDING.values())):
        tp = sum(1 for g, p in rows if label in g and label in p)
        fp = sum(1 for g, p in rows if label not in g and label in p)
        fn = sum(1 for g, p in rows if label in g and label not in p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        print(f"{label:16s} {tp + fn:7d} {precision:5.2f} {recall:5.2f} {f1:5.2f}")
    print(f"macro F1: {sum(f1s) / len(f1s):.3f}")


if __name__ == "__main__":
    main()
