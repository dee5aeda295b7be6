"""The query encoder: MiniLM run by ONNX Runtime, with no torch or sentence-transformers import.

``copilot kb build`` exports the sentence-transformers model once (:mod:`copilot.kb.export`)
into ``<data_dir>/kb/encoder/``: ``model.onnx`` (the transformer, outputs its last hidden
state), the model's own ``tokenizer.json``, and ``encoder.json`` naming the source model (its id
and the sha256 of its weights), the maximum sequence length and the sha256 of ``model.onnx``.
Vectors are computed exactly as sentence-transformers computes them for all-MiniLM-L6-v2:
tokens truncated at ``max_seq_length``, mean pooling over the attention mask, L2
normalisation (cosine 0.9999+ with sentence-transformers' own vectors; ``tests/test_kb_encoder.py``).

The weights are kept apart from the graph, in ``model.onnx.data`` (ONNX external data), which
ONNX Runtime maps from the file instead of parsing and copying: with the session built once per
process (one thread, the query is milliseconds) loading costs about 0.15 s (onnxruntime,
tokenizers and numpy only). Both model files are checked against their recorded sha256 before
first use, so a damaged export is refused, never used; a successful check is remembered in
``verified.json`` (each file's size, inode and modification and change times), so later
processes hash them again only when a file was replaced or written to since.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
#: The weights of MODEL_FILE (ONNX external data), memory-mapped by ONNX Runtime.
DATA_FILE = "model.onnx.data"
#: The files that passed their sha256 check, with what identifies their content on disk.
VERIFIED_FILE = "verified.json"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "encoder.json"
#: Bumped when the export's graph, files or pooling change (an older export is then redone).
#: 2: the weights in DATA_FILE.
FORMAT = 2


class EncoderMissingError(CopilotError):
    """The ONNX query encoder is not exported (or not for this model); ``copilot kb build`` makes it."""


@dataclass(frozen=True)
class EncoderIdentity:
    """What an export was made from: the model id and the sha256 of its weights file."""

    model_id: str
    weights_sha256: str

    def as_dict(self) -> dict[str, Any]:
        """The identity as stored in ``encoder.json``."""
        return {"format": FORMAT, "model_id": self.model_id, "weights_sha256": self.weights_sha256}


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_meta(folder: Path) -> dict[str, Any]:
    """The export's ``encoder.json``, or {} when absent or unreadable."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def is_exported(folder: Path, identity: EncoderIdentity) -> bool:
    """Whether ``folder`` holds a complete export of the model ``identity`` names (files only;
    the model's checksum is checked when it loads)."""
    meta = read_meta(folder)
    wanted = identity.as_dict()
    return (
        all(meta.get(k) == v for k, v in wanted.items())
        and (folder / MODEL_FILE).is_file()
        and (folder / DATA_FILE).is_file()
        and (folder / TOKENIZER_FILE).is_file()
    )


def _file_state(path: Path) -> list[int]:
    """What changes when a file is replaced or written to: size, inode, mtime and ctime (ns)."""
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def verify(folder: Path, meta: dict[str, Any]) -> None:
    """Check the model files of an export against their recorded sha256 (EncoderMissingError
    when one differs); skipped for files unchanged on disk since they last passed."""
    wanted = {MODEL_FILE: meta.get("onnx_sha256"), DATA_FILE: meta.get("data_sha256")}
    try:
        passed = json.loads((folder / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        passed = {}
    states = {name: _file_state(folder / name) for name in wanted}
    if isinstance(passed, dict) and all(
        passed.get(name) == [digest, *states[name]] for name, digest in wanted.items()
    ):
        return
    for name, digest in wanted.items():
        if sha256_file(folder / name) != digest:
            raise EncoderMissingError(f"{folder / name} does not match its recorded sha256 (damaged export)")
    record = {name: [digest, *states[name]] for name, digest in wanted.items()}
    tmp = folder / f".{VERIFIED_FILE}.{os.getpid()}"
    try:  # a read-only export is still used, checked each time
        tmp.write_text(json.dumps(record))
        os.chmod(tmp, 0o600)
        os.replace(tmp, folder / VERIFIED_FILE)
    except OSError as exc:
        log.debug("could not record the encoder's check in %s: %s", folder, exc)


class OnnxEncoder:
    """Texts to L2-normalised float32 vectors with ONNX Runtime (CPU), as sentence-transformers."""

    def __init__(self, folder: Path, identity: EncoderIdentity, threads: int | None = None) -> None:
        if not is_exported(folder, identity):
            raise EncoderMissingError(f"no ONNX export of {identity.model_id} in {folder}")
        meta = read_meta(folder)
        model = folder / MODEL_FILE
        verify(folder, meta)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.dim = int(meta.get("dim", 384))
        self.max_length = int(meta.get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        # One thread per call: a query is milliseconds, and a build runs calls side by side.
        options.intra_op_num_threads = threads or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors (n, dim) for ``texts`` in one forward pass (callers batch by length)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
