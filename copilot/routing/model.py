"""The intent model: one logistic regression per intent over hashed features (features.py).

Weights ship inside the package as a generated module (``model_data.py``, written by
``bench/train_router.py`` from ``tests/data/routing_questions.jsonl``): int8-quantised rows of
the hash space that training touched, zlib-compressed and base64-encoded, so the model loads in
milliseconds with numpy alone and travels with every wheel.
"""

from __future__ import annotations

import base64
import logging
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from copilot.errors import PlannerError
from copilot.routing.features import DIM, featurize
from copilot.routing.intents import INTENTS, Intent

__all__ = ["IntentModel", "decode_weights", "encode_weights", "load_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntentModel:
    """Multi-label intent classifier: sigmoid(x @ weights + bias) against per-intent thresholds."""

    intents: tuple[Intent, ...]
    weights: np.ndarray  # (DIM, len(intents)) float32
    bias: np.ndarray  # (len(intents),) float32
    thresholds: np.ndarray  # (len(intents),) float32

    def probabilities(self, part: str) -> dict[Intent, float]:
        """Each intent's probability for a normalised question part."""
        idx, val = featurize(part)
        logits = self.bias + (val @ self.weights[idx] if idx.size else 0.0)
        probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        return {intent: float(p) for intent, p in zip(self.intents, probs, strict=True)}

    def predict(self, part: str) -> tuple[tuple[Intent, ...], dict[Intent, float]]:
        """The intents above their thresholds (at least the likeliest one when it passes half its
        threshold), and every intent's probability."""
        probs = self.probabilities(part)
        chosen = [i for n, i in enumerate(self.intents) if probs[i] >= self.thresholds[n]]
        if not chosen:
            best = max(range(len(self.intents)), key=lambda n: probs[self.intents[n]])
            if probs[self.intents[best]] >= self.thresholds[best] / 2:
                chosen = [self.intents[best]]
        return tuple(chosen), probs


def encode_weights(weights: np.ndarray, bias: np.ndarray) -> str:
    """Base64 text of the int8-quantised non-zero rows of ``weights`` plus the bias."""
    rows = np.flatnonzero(np.abs(weights).max(axis=1) > 0).astype(np.uint16)
    scale = np.maximum(np.abs(weights).max(axis=0), 1e-8) / 127.0
    q = np.round(weights[rows] / scale).astype(np.int8)
    header = np.array([weights.shape[0], weights.shape[1], rows.size], dtype=np.int32)
    payload = b"".join(
        [
            header.tobytes(),
            scale.astype(np.float32).tobytes(),
            bias.astype(np.float32).tobytes(),
            rows.tobytes(),
            q.tobytes(),
        ]
    )
    return base64.b64encode(zlib.compress(payload, 9)).decode("ascii")


def decode_weights(blob: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) from :func:`encode_weights` text."""
    raw = zlib.decompress(base64.b64decode(blob))
    dim, k, n = (int(v) for v in np.frombuffer(raw[:12], dtype=np.int32))
    offset = 12
    scale = np.frombuffer(raw[offset : offset + 4 * k], dtype=np.float32)
    offset += 4 * k
    bias = np.frombuffer(raw[offset : offset + 4 * k], dtype=np.float32).copy()
    offset += 4 * k
    rows = np.frombuffer(raw[offset : offset + 2 * n], dtype=np.uint16)
    offset += 2 * n
    q = np.frombuffer(raw[offset : offset + n * k], dtype=np.int8).reshape(n, k)
    weights = np.zeros((dim, k), dtype=np.float32)
    weights[rows.astype(np.int64)] = q.astype(np.float32) * scale
    return weights, bias


@cache
def load_model() -> IntentModel:
    """The shipped intent model (loaded once per process)."""
    try:
        from copilot.routing import model_data
    except ImportError as exc:  # a checkout without trained weights
        raise PlannerError(
            "the routing model is missing (copilot/routing/model_data.py); train it with "
            "'python bench/train_router.py'"
        ) from exc
    weights, bias = decode_weights(model_data.WEIGHTS)
    if weights.shape[0] != DIM:
        raise PlannerError(f"routing model was trained for {weights.shape[0]} features, this code uses {DIM}")
    intents = tuple(model_data.INTENTS)
    unknown = set(intents) - set(INTENTS)
    if unknown:
        raise PlannerError(f"routing model knows intents this code does not: {sorted(unknown)}")
    thresholds = np.array([model_data.THRESHOLDS[i] for i in intents], dtype=np.float32)
    log.debug("routing model loaded: %d intents, %d features", len(intents), DIM)
    return IntentModel(intents, weights, bias, thresholds)  # type: ignore[arg-type]
