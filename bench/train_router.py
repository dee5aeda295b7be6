"""Train the routing intent model and write it into the package (copilot/routing/model_data.py).

Reproducible: the same data file gives the same weights (deterministic L-BFGS, no sampling).

1. Read ``tests/data/routing_questions.jsonl`` and keep the ``train`` split (the ``heldout``
   split is never read here). Questions that split into several parts are left out of
   training: their labels are the union over parts; the router classifies part by part.
2. Features: ``copilot.routing.features`` (hashed word/char n-grams + lexicon flags).
3. One L2-regularised logistic regression per intent (scipy L-BFGS on a sparse matrix).
4. Augmentation: each question gets one variant with a finding, side, zone or image word
   swapped (the intents stay), so the model learns the question's shape, not its nouns.
5. Per-intent thresholds: 5-fold cross-validation on the training split, the threshold that
   maximises that intent's F1 (bounded to [0.25, 0.6]).
6. Write the int8-quantised weights and thresholds as a Python module.

Usage: ``python bench/train_router.py [--data PATH] [--out PATH] [--l2 FLOAT]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.routing.features import DIM, featurize  # noqa: E402
from copilot.routing.intents import INTENTS  # noqa: E402
from copilot.routing.model import decode_weights, encode_weights  # noqa: E402
from copilot.routing.text import prepare, split_parts  # noqa: E402

DATA = ROOT / "tests" / "data" / "routing_questions.jsonl"
OUT = ROOT / "copilot" / "routing" / "model_data.py"
FOLDS = 5


def load(path: Path) -> tuple[list[str], np.ndarray]:
    """Single-part training questions, read as the router reads them (normalised, typos
    corrected, the image-framing clause taken out), and their intent matrix."""
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] != "train":
            continue
        parts = split_parts(prepare(row["question"])[0])
        if len(parts) != 1:
            continue
        texts.append(parts[0])
        labels.append([1.0 if i in row["intents"] else 0.0 for i in INTENTS])
    return texts, np.array(labels, dtype=np.float64)


#: Surface words swapped to make variants of training questions (intents do not change).
SWAPS: tuple[tuple[str, ...], ...] = (
    (
        "pneumothorax",
        "pleural effusion",
        "effusion",
        "consolidation",
        "nodule",
        "mass",
        "opacity",
        "atelectasis",
        "cardiomegaly",
        "edema",
        "pneumonia",
        "infiltrate",
        "fracture",
        "emphysema",
        "free air",
        "lymphadenopathy",
        "calcification",
        "pneumomediastinum",
    ),
    ("left", "right"),
    ("upper", "lower", "middle"),
    ("image", "film", "picture", "radiograph", "x-ray", "chest x-ray"),
    ("lung", "chest"),
)


def augment(texts: list[str], y: np.ndarray, seed: int = 7) -> tuple[list[str], np.ndarray]:
    """Each training question plus one variant with a finding, side, zone or image word swapped."""
    rng = np.random.default_rng(seed)
    out, rows = list(texts), [*y]
    seen = set(texts)
    for text, labels in zip(texts, y, strict=True):
        for group in SWAPS:
            hits = [w for w in group if re.search(rf"\b{re.escape(w)}\b", text)]
            if not hits:
                continue
            old = hits[int(rng.integers(len(hits)))]
            new = [w for w in group if w != old][int(rng.integers(len(group) - 1))]
            variant = re.sub(rf"\b{re.escape(old)}\b", new, text, count=1)
            if variant not in seen:
                seen.add(variant)
                out.append(variant)
                rows.append(labels)
            break
    return out, np.array(rows)


def matrix(texts: list[str]) -> sparse.csr_matrix:
    """Sparse feature matrix (rows: texts)."""
    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        idx, val = featurize(text)
        rows += [r] * idx.size
        cols += idx.tolist()
        vals += val.tolist()
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), DIM))


def fit(x: sparse.csr_matrix, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (DIM, K) and bias (K,) of one logistic regression per column of ``y``, fitted
    jointly by L-BFGS over the feature columns the training set uses."""
    n, k = y.shape
    active = np.unique(x.indices)
    xa = x[:, active].tocsr()
    pos = y.sum(axis=0)
    # Rare intents weigh more, so a handful of examples still move the boundary.
    w_pos = np.clip((n - pos) / np.maximum(pos, 1.0) / 3.0, 1.0, 5.0)
    sample = np.where(y > 0, w_pos, 1.0)
    m = active.size

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w = params[: m * k].reshape(m, k)
        b = params[m * k :]
        z = xa @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        eps = 1e-12
        value = -np.sum(sample * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))) + l2 * np.sum(w * w)
        g = sample * (p - y)
        grad = np.concatenate([(xa.T @ g + 2 * l2 * w).ravel(), g.sum(axis=0)])
        return float(value), grad

    result = minimize(loss, np.zeros(m * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    weights = np.zeros((DIM, k))
    weights[active] = result.x[: m * k].reshape(m, k)
    return weights, result.x[m * k :]


def thresholds(texts: list[str], y: np.ndarray, l2: float) -> dict[str, float]:
    """Per-intent thresholds maximising out-of-fold F1."""
    x = matrix(texts)
    folds = np.arange(len(texts)) % FOLDS
    probs = np.zeros_like(y)
    for f in range(FOLDS):
        train, test = folds != f, folds == f
        aug_texts, aug_y = augment([t for t, keep in zip(texts, train, strict=True) if keep], y[train])
        w, b = fit(matrix(aug_texts), aug_y, l2)
        probs[test] = 1.0 / (1.0 + np.exp(-(x[test] @ w + b)))
    out = {}
    for j, intent in enumerate(INTENTS):
        best, best_f1 = 0.5, -1.0
        for th in np.arange(0.25, 0.61, 0.025):
            pred = probs[:, j] >= th
            tp = float(np.sum(pred & (y[:, j] > 0)))
            f1 = 2 * tp / max(1.0, pred.sum() + y[:, j].sum())
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(th), f1
        out[intent] = round(best, 3)
        print(
            f"  {intent:12s} threshold {best:.3f}  out-of-fold F1 {best_f1:.3f}  ({int(y[:, j].sum())} "
            f"examples)"
        )
    return out


def write_module(path: Path, weights: np.ndarray, bias: np.ndarray, cuts: dict[str, float], n: int) -> None:
    """Write the generated module holding the model."""
    blob = encode_weights(weights.astype(np.float32), bias.astype(np.float32))
    lines = [blob[i : i + 100] for i in range(0, len(blob), 100)]
    body = "\n".join(f'    "{line}"' for line in lines)
    path.write_text(
        '"""The routing intent model, generated by bench/train_router.py from\n'
        f'tests/data/routing_questions.jsonl ({n} training questions); do not edit."""\n\n'
        "INTENTS = (\n" + "".join(f'    "{i}",\n' for i in INTENTS) + ")\n"
        "THRESHOLDS = {\n" + "".join(f'    "{i}": {cut},\n' for i, cut in cuts.items()) + "}\n"
        f"WEIGHTS = (\n{body}\n)\n",
        encoding="utf-8",
    )


def main() -> None:
    """Train, tune thresholds, write the module."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--l2", type=float, default=0.15)
    args = parser.parse_args()
    texts, y = load(args.data)
    print(f"{len(texts)} single-part training questions, {len(INTENTS)} intents")
    cuts = thresholds(texts, y, args.l2)
    aug_texts, aug_y = augment(texts, y)
    print(f"{len(aug_texts) - len(texts)} variants added (finding, side, zone and image words swapped)")
    weights, bias = fit(matrix(aug_texts), aug_y, args.l2)
    write_module(args.out, weights, bias, cuts, len(texts))
    check, _ = decode_weights(encode_weights(weights.astype(np.float32), bias.astype(np.float32)))
    print(
        f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB, quantisation error "
        f"{np.abs(check - weights).max():.4f})"
    )


if __name__ == "__main__":
    main()
