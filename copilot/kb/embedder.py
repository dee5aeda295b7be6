"""Sentence embeddings for the knowledge index: MiniLM through ONNX Runtime.

The model (all-MiniLM-L6-v2 by default, from the model registry) is exported to ONNX once
(:mod:`copilot.kb.export`, the only step that imports torch) into ``<data_dir>/kb/_encoder/``;
after that, building and searching embed with :class:`copilot.kb.encoder.OnnxEncoder`
(onnxruntime, tokenizers, numpy), so a query costs milliseconds and no torch import.
:meth:`Embedder.encode` is written for throughput on a CPU (see ``bench/retrieval.py``):

- identical texts are embedded once (a fifth of the IU reports repeat another word for word);
- texts are embedded longest first in length-sorted batches of 16, so a batch carries almost
  no padding;
- with ``resume=FOLDER``, each chunk of :data:`CHUNK` vectors is saved there as it finishes,
  keyed by the texts, so an interrupted build continues where it stopped.

The vectors are always float32 and L2-normalised.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from copilot.config import Settings, get_settings
from copilot.kb.encoder import EncoderIdentity, EncoderMissingError, OnnxEncoder, is_exported

log = logging.getLogger(__name__)

#: Texts per forward pass (length-sorted, so padding is small).
BATCH = 16
#: Texts per progress report and per saved chunk of a resumable build.
CHUNK = 128
DIM = 384
#: Folder of the ONNX export inside the knowledge-base folder (not a valid corpus name).
ENCODER_FOLDER = "_encoder"

_encoders: dict[tuple[str, str], OnnxEncoder] = {}
_encoders_lock = threading.Lock()


class Embedder:
    """Encodes texts into L2-normalised float32 vectors; the encoder loads once per process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.model_id = self.settings.embedding_model
        self.folder = self.settings.data_dir / "kb" / ENCODER_FOLDER
        self._identity: EncoderIdentity | None = None

    def identity(self) -> EncoderIdentity:
        """The source model's id and the sha256 of its weights (from its registry card; read
        once: the query path needs the card, not the registry's download machinery)."""
        if self._identity is None:
            from copilot.errors import UnknownModelError
            from copilot.models.cards import shipped_cards

            cards = shipped_cards()
            card = cards.get(self.model_id)
            if card is None:
                known = ", ".join(cards)
                raise UnknownModelError(f"unknown model {self.model_id!r}; known models: {known}")
            digests = [f.sha256 for f in card.files if getattr(f, "sha256", None)]
            self._identity = EncoderIdentity(self.model_id, digests[0] if digests else card.id)
        return self._identity

    def exported(self) -> bool:
        """Whether the ONNX query encoder of this model is exported (cheap: reads its metadata)."""
        return is_exported(self.folder, self.identity())

    def export(self) -> None:
        """Export the model to ONNX now (imports torch; a few seconds). Raises CopilotError
        (WeightsMissingError when the model is not installed)."""
        from copilot.kb.export import export_encoder
        from copilot.models.registry import ModelRegistry

        source = ModelRegistry(self.settings).ensure(self.model_id)
        export_encoder(source, self.folder, self.identity())

    def encoder(self, export: bool = True) -> OnnxEncoder:
        """The shared ONNX encoder, exported first when missing and ``export`` allows it."""
        key = (str(self.folder), self.model_id)
        with _encoders_lock:
            if key in _encoders:
                return _encoders[key]
            identity = self.identity()
            if not is_exported(self.folder, identity):
                if not export:
                    raise EncoderMissingError(
                        f"the query encoder of {self.model_id} is not exported; run 'copilot kb build'"
                    )
                self.export()
            try:
                encoder = OnnxEncoder(self.folder, identity)
            except EncoderMissingError:
                if not export:
                    raise
                log.warning("re-exporting the damaged ONNX encoder in %s", self.folder)
                self.export()
                encoder = OnnxEncoder(self.folder, identity)
            _encoders[key] = encoder
            return encoder

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = BATCH,
        progress: Callable[[int, int], None] | None = None,
        resume: Path | None = None,
    ) -> np.ndarray:
        """Vectors (n, dim) for ``texts``, normalised so a dot product is the cosine.

        ``progress(done, total)`` counts distinct texts (the ones actually embedded); with
        ``resume``, chunks already saved there for the same texts are reused, not embedded.
        """
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
        if progress:
            progress(0, len(unique))  # the bar appears before the model loads
        saved = _ChunkStore(resume, [unique[i] for i in order]) if resume is not None else None
        encoder = self.encoder()
        vectors = np.empty((len(unique), encoder.dim), dtype=np.float32)
        for start in range(0, len(order), CHUNK):
            rows = order[start : start + CHUNK]
            part = saved.get(start) if saved else None
            if part is None or part.shape != (len(rows), encoder.dim):
                part = _encode_parallel(encoder, [unique[i] for i in rows], batch_size)
                if saved:
                    saved.put(start, part)
            vectors[rows] = part
            if progress:
                progress(min(start + CHUNK, len(order)), len(order))
        if len(unique) == len(texts):
            return vectors
        where = {text: i for i, text in enumerate(unique)}
        return vectors[[where[text] for text in texts]]


def workers() -> int:
    """Threads that embed batches side by side (each runs a one-thread ONNX session call):
    one per core, at most four. Two single-threaded calls used 8.8 CPU-s per 300 IU reports
    where one two-threaded call used 11.4 (bench/retrieval.py, 2-core EPYC)."""
    return max(1, min(4, os.cpu_count() or 1))


def _encode_parallel(encoder: OnnxEncoder, texts: list[str], batch_size: int) -> np.ndarray:
    """``texts`` embedded in batches spread over :func:`workers` daemon threads (ONNX Runtime
    releases the GIL; daemon threads, so a process that exits mid-build is not held)."""
    from copilot.runtime.deadline import DaemonPool

    batches = [texts[b : b + batch_size] for b in range(0, len(texts), batch_size)]
    if len(batches) == 1 or workers() == 1:
        return np.concatenate([encoder.encode(batch) for batch in batches])

    def lane(first: int) -> list[tuple[int, np.ndarray]]:
        return [(i, encoder.encode(batches[i])) for i in range(first, len(batches), workers())]

    pool = DaemonPool(name="copilot-kb-embed")
    futures = [pool.submit(lane, first) for first in range(min(workers(), len(batches)))]
    done = dict(pair for future in futures for pair in future.result())
    return np.concatenate([done[i] for i in range(len(batches))])


class _ChunkStore:
    """Saved chunks of a resumable encoding: ``chunk-<start>.npy`` files in a folder that is
    emptied when the texts (in embedding order) differ from the ones it was made for."""

    def __init__(self, folder: Path, ordered: list[str]) -> None:
        digest = hashlib.sha256()
        for text in ordered:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        key = f"{digest.hexdigest()}|{CHUNK}"
        self.folder = folder
        try:
            same = (folder / "key").read_text() == key
        except OSError:
            same = False
        if not same:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, mode=0o700, exist_ok=True)
            (folder / "key").write_text(key)

    def get(self, start: int) -> np.ndarray | None:
        """The saved vectors of the chunk starting at ``start``, or None."""
        try:
            return np.load(self.folder / f"chunk-{start}.npy")
        except (OSError, ValueError):
            return None

    def put(self, start: int, vectors: np.ndarray) -> None:
        """Save a finished chunk (written under a temporary name, then renamed: never half)."""
        tmp = self.folder / f".chunk-{start}.npy"
        try:
            np.save(tmp, vectors)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.folder / f"chunk-{start}.npy")
        except OSError as exc:  # a full disk costs the resumability, not the build
            log.warning("could not save a chunk of the build in %s: %s", self.folder, exc)


__all__ = ["BATCH", "CHUNK", "DIM", "Embedder"]
