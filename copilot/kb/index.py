"""The retrieval index: dense MiniLM vectors plus negation-aware BM25, per corpus, persisted.

Each corpus (IU reports, knowledge cards, each user corpus) is embedded once and stored under
``<data_dir>/kb/<corpus>/``; it is rebuilt only when its files (or the embedding model) change.
Queries combine cosine similarity with BM25 over tokens in which negated finding mentions are
marked (``no_effusion``), then drop passages that negate a finding the query asks for: a search
for "pleural effusion" does not return "no pleural effusion" reports.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from copilot.config import Settings, get_settings
from copilot.errors import CopilotError
from copilot.kb.corpus import (
    IU_SOURCE,
    KB_SOURCE,
    Passage,
    default_iu_path,
    fingerprint,
    read_iu_reports,
    read_knowledge_cards,
    read_user_corpus,
)
from copilot.kb.embedder import Embedder
from copilot.text.labeler import label_text, negation_marked_tokens

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense"]
DENSE_WEIGHT = 0.6
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SearchHit:
    """One search result with its citation."""

    source: str
    id: str
    score: float
    text: str
    citation: str
    title: str = ""
    mesh: tuple[str, ...] = ()


@dataclass
class _Corpus:
    name: str
    passages: list[Passage]
    vectors: np.ndarray
    tokens: list[list[str]]
    labels: list[dict[str, Any]]
    bm25: Any


class KnowledgeIndex:
    """All corpora, loaded (or built) lazily; thread-safe for queries."""

    def __init__(self, settings: Settings | None = None, *, iu_limit: int | None = None) -> None:
        self.settings = settings or get_settings()
        self.embedder = Embedder(self.settings)
        self.iu_limit = iu_limit if iu_limit is not None else self.settings.kb_iu_limit
        self._corpora: dict[str, _Corpus] | None = None
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        """Where index files are stored."""
        return self.settings.data_dir / "kb"

    # -- corpus registry ---------------------------------------------------------------
    def _user_corpora_file(self) -> Path:
        return self.root / "user_corpora.json"

    def user_corpora(self) -> dict[str, str]:
        """User corpora added with ``copilot kb add``: name -> path."""
        try:
            return dict(json.loads(self._user_corpora_file().read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def add_corpus(self, path: Path, name: str | None = None, progress: Progress | None = None) -> int:
        """Add a user corpus (text, Markdown or JSONL files) and index it; returns passages."""
        path = path.expanduser().resolve()
        if not path.exists():
            raise CopilotError(f"{path}: no such file or folder")
        name = name or path.stem
        if name in (IU_SOURCE, KB_SOURCE):
            raise CopilotError(f"corpus name {name!r} is reserved")
        corpora = self.user_corpora()
        corpora[name] = str(path)
        self.root.mkdir(parents=True, exist_ok=True)
        self._user_corpora_file().write_text(json.dumps(corpora, indent=2))
        with self._lock:
            self._corpora = None
        corpus = self._load_or_build(name, [path], lambda: read_user_corpus(path, name), progress)
        if not corpus.passages:
            raise CopilotError(f"{path}: no .txt, .md or .jsonl passages found")
        return len(corpus.passages)

    def _sources(self) -> list[tuple[str, list[Path], Callable[[], Any]]]:
        out: list[tuple[str, list[Path], Callable[[], Any]]] = []
        import copilot.kb as kb_pkg

        cards_dir = Path(kb_pkg.__file__).parent / "cards"
        out.append((KB_SOURCE, [cards_dir], read_knowledge_cards))
        iu = self.settings.kb_corpus or default_iu_path()
        if iu is not None and Path(iu).exists():
            iu_path = Path(iu)

            def iu_reader() -> Any:
                for n, passage in enumerate(read_iu_reports(iu_path)):
                    if self.iu_limit is not None and n >= self.iu_limit:
                        return
                    yield passage

            out.append((IU_SOURCE, [iu_path], iu_reader))
        else:
            log.warning("IU report corpus not found; install torchxrayvision or set COPILOT_KB_CORPUS")
        for name, path in self.user_corpora().items():
            p = Path(path)
            if p.exists():
                out.append((name, [p], functools.partial(read_user_corpus, p, name)))
        return out

    # -- building and loading ----------------------------------------------------------
    def _load_or_build(
        self, name: str, paths: list[Path], reader: Callable[[], Any], progress: Progress | None
    ) -> _Corpus:
        folder = self.root / name
        stamp = f"{fingerprint(paths)}|{self.embedder.model_id}|{self.iu_limit if name == IU_SOURCE else ''}"
        meta_file = folder / "meta.json"
        try:
            meta = json.loads(meta_file.read_text())
        except (FileNotFoundError, ValueError):
            meta = {}
        if meta.get("stamp") == stamp:
            try:
                return self._load(name, folder)
            except (OSError, ValueError) as exc:
                log.warning("rebuilding damaged index %s: %s", name, exc)
        passages = list(reader())
        texts = [p.text for p in passages]

        def on_progress(done: int, total: int) -> None:
            if progress:
                progress(name, done, total)

        vectors = self.embedder.encode(texts, batch_size=16, progress=on_progress)
        tokens = [negation_marked_tokens(t) for t in texts]
        labels = [dict(label_text(t)) for t in texts]
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "passages.jsonl", "w", encoding="utf-8") as fh:
            for p, tok, lab in zip(passages, tokens, labels, strict=True):
                fh.write(json.dumps({"passage": p.model_dump(), "tokens": tok, "labels": lab}) + "\n")
        np.save(folder / "vectors.npy", vectors)
        meta_file.write_text(json.dumps({"stamp": stamp, "count": len(passages)}))
        log.info("indexed %s: %d passages", name, len(passages))
        return _Corpus(name, passages, vectors, tokens, labels, _bm25(tokens))

    def _load(self, name: str, folder: Path) -> _Corpus:
        passages, tokens, labels = [], [], []
        with open(folder / "passages.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                passages.append(Passage.model_validate(row["passage"]))
                tokens.append(row["tokens"])
                labels.append(row["labels"])
        vectors = np.load(folder / "vectors.npy")
        if len(vectors) != len(passages):
            raise ValueError("vectors and passages differ in length")
        return _Corpus(name, passages, vectors, tokens, labels, _bm25(tokens))

    def corpora(self, progress: Progress | None = None) -> dict[str, _Corpus]:
        """Every corpus, loaded from disk or built once."""
        with self._lock:
            if self._corpora is None:
                self._corpora = {
                    name: self._load_or_build(name, paths, reader, progress)
                    for name, paths, reader in self._sources()
                }
            return self._corpora

    # -- searching ---------------------------------------------------------------------
    def get(self, source: str, passage_id: str) -> SearchHit | None:
        """One passage by source and id (e.g. the knowledge card of a finding), or None."""
        corpus = self.corpora().get(source)
        if corpus is None:
            return None
        for p in corpus.passages:
            if p.id == passage_id:
                return SearchHit(
                    source=p.source,
                    id=p.id,
                    score=1.0,
                    text=p.text,
                    citation=p.citation,
                    title=p.title,
                    mesh=tuple(p.mesh),
                )
        return None

    def search(
        self, query: str, k: int = 5, sources: list[str] | None = None, mode: Mode = "hybrid"
    ) -> list[SearchHit]:
        """The ``k`` best passages for ``query`` across corpora (optionally only ``sources``)."""
        if not query.strip():
            return []
        corpora = self.corpora()
        unknown = [s for s in sources or [] if s not in corpora]
        if unknown:
            raise CopilotError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(corpora)}")
        qvec = self.embedder.encode([query])[0]
        wanted = {f for f, s in label_text(query).items() if s == "present"}
        qtokens = negation_marked_tokens(query)
        scored: list[tuple[float, _Corpus, int]] = []
        for name, corpus in corpora.items():
            if (sources and name not in sources) or not corpus.passages:
                continue
            dense = corpus.vectors @ qvec
            if mode == "hybrid":
                keyword = np.asarray(corpus.bm25.get_scores(qtokens), dtype=np.float32)
                top = float(keyword.max()) if keyword.size else 0.0
                keyword = keyword / top if top > 0 else keyword
                score = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * keyword
                if wanted:
                    negates = np.array([any(lab.get(f) == "absent" for f in wanted) for lab in corpus.labels])
                    score = np.where(negates, -np.inf, score)
            else:
                score = dense
            best = np.argsort(-score)[:k]
            scored.extend((float(score[i]), corpus, int(i)) for i in best if np.isfinite(score[i]))
        scored.sort(key=lambda t: -t[0])
        hits = []
        for score, corpus, i in scored[:k]:
            p = corpus.passages[i]
            hits.append(
                SearchHit(
                    source=p.source,
                    id=p.id,
                    score=round(score, 4),
                    text=p.text,
                    citation=p.citation,
                    title=p.title,
                    mesh=tuple(p.mesh),
                )
            )
        return hits


def _bm25(tokens: list[list[str]]) -> Any:
    from rank_bm25 import BM25Okapi

    return BM25Okapi(tokens or [[""]])


_shared: dict[tuple[str, str, int | None], KnowledgeIndex] = {}
_shared_lock = threading.Lock()


def shared_index(settings: Settings | None = None, iu_limit: int | None = None) -> KnowledgeIndex:
    """The process-wide index for these settings (corpora load once)."""
    settings = settings or get_settings()
    iu_limit = iu_limit if iu_limit is not None else settings.kb_iu_limit
    key = (str(settings.data_dir), settings.embedding_model, iu_limit)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = KnowledgeIndex(settings, iu_limit=iu_limit)
        return _shared[key]
