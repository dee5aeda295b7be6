"""The retrieval index: dense MiniLM vectors plus negation-aware BM25, per corpus, persisted.

Each corpus (IU reports, knowledge cards, each user corpus) is embedded once and stored under
``<data_dir>/kb/<corpus>/`` (owner-only folders: a user's documents may hold patient data). The
built-in corpora are rebuilt when their files (or the embedding model) change. A user corpus is
a snapshot made by ``copilot kb add``, which indexes into a temporary folder and registers the
corpus only when that succeeded; searches never rebuild it (``kb add --replace`` refreshes it).
Queries combine cosine similarity with BM25 over tokens in which negated finding mentions are
marked (``no_effusion``), then drop passages that negate a finding the query asks for: a search
for "pleural effusion" does not return "no pleural effusion" reports.

Relevance (``search(..., relevant_only=True)``, what the retriever asks for): a passage counts
only when both kinds of evidence agree: its cosine similarity to the query reaches
:data:`MIN_DENSE` and it shares an informative word with the query (:func:`query_terms`). On
the shipped cards and IU reports, the best passages of knowledge questions score 0.3 to 0.76,
questions outside the domain ("what is the weather today?") below 0.2, and a user's
document with no word of the question ("insert a chest tube now" for "is there a
pneumothorax?") fails the word test (docs/answers.md). A word MiniLM does not know
("Fleischner") can stand in for similarity when it is specific (in at most 3 passages or 2% of
the corpus's), the passage's keyword score is at least half the best one and its similarity
at least :data:`MIN_DENSE_SPECIFIC`. Hits are
shown as whole sentences around the part that matches the query (:func:`excerpt`), with their
reference and licence.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from copilot.config import Settings, get_settings
from copilot.errors import CopilotError
from copilot.kb.corpus import (
    DEIDENTIFIED,
    IU_SOURCE,
    KB_SOURCE,
    LEGACY_DEIDENTIFIED,
    Passage,
    SkippedDocument,
    default_iu_path,
    fingerprint,
    list_user_files,
    provenance,
    read_iu_reports,
    read_knowledge_cards,
    read_user_file,
    shown_text,
)
from copilot.kb.embedder import Embedder
from copilot.kb.kinds import KIND_WORDS, answered_kinds, asked_kinds
from copilot.paths import private_dir
from copilot.text.labeler import label_text, negation_marked_tokens

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense"]
DENSE_WEIGHT = 0.6
Progress = Callable[[str, int, int], None]
#: Least cosine similarity (MiniLM) of a relevant passage to its query (see the module docstring).
MIN_DENSE = 0.3
#: Relevance by a specific word instead of similarity: a query word found in at most
#: SPECIFIC_SHARE of a corpus's passages (or SPECIFIC_FEW), in a passage whose keyword score is at
#: least MIN_KEYWORD of the best ("Fleischner": 2 of the 18 cards; "opacity" is in too many reports).
SPECIFIC_SHARE = 0.02
SPECIFIC_FEW = 3
MIN_KEYWORD = 0.5
#: ... and whose similarity still reaches this (a report that says "today" is not about the weather).
MIN_DENSE_SPECIFIC = 0.1
#: The saved keyword statistics of a corpus (:class:`_Keywords`), beside its vectors.
KEYWORDS_FILE = "keywords.npz"
#: Most characters of a passage shown: whole sentences around the part that matches.
EXCERPT_CHARS = 360
#: Words that are no evidence of relevance: question and function words, "image", "patient".
_STOPWORD_TEXT = """a an the of in on at to for from by with about as and or but not nor is are was were be
    been being am do does did done have has had having it its this that these those there here
    what which who whom whose when where why how can could would should will shall may might must
    i you he she we they me my your our their his her them us any some all each every other else
    more most much many few such than then so too very just also only own same both either
    neither if whether into onto over under again further once please tell show give find
    explain describe define definition look looks like seen see shown shows image images picture
    film study patient case cases thing things one ones kind type sort get got make made now"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NOT_AN_END = re.compile(r"(?:\b\d{1,2}|\b(?:e\.g|i\.e|vs|etc|approx|dr|fig|no|cf)|\b[A-Z])\.$", re.I)


def _stem(token: str) -> str:
    """A crude stem, enough to match "causes" with "cause" and "effusions" with "effusion"."""
    if len(token) > 4 and token.endswith("ies"):
        token = token[:-3] + "y"
    elif len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        token = token[:-1]
    return token[:7]


def _terms(tokens: list[str]) -> frozenset[str]:
    return frozenset(_stem(t) for t in tokens if len(t) > 2 and t not in STOPWORDS)


def query_terms(query: str) -> frozenset[str]:
    """The informative words of a query, stemmed (negated mentions stay marked ``no_``)."""
    return _terms(negation_marked_tokens(query))


_KIND_TERMS = _terms(KIND_WORDS.split())


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (numbered items, initials and abbreviations do not end one)."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        if out and _NOT_AN_END.search(out[-1]):
            out[-1] += " " + piece
        elif piece:
            out.append(piece)
    return out


def excerpt(text: str, query: str, limit: int = EXCERPT_CHARS) -> str:
    """Whole sentences of ``text`` around the one that shares most words with ``query`` (and
    gives the kind of answer it asks for: causes, next step; :mod:`copilot.kb.kinds`), within
    ``limit`` characters; "…" marks what was left out before or after. A passage that fits is
    returned whole; a single sentence longer than ``limit`` is cut at a word, marked."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    parts = sentences(text)
    terms = query_terms(query)
    kinds = asked_kinds(query)  # "what causes..." centres on the sentence that gives causes
    gives = [len(answered_kinds(p, kinds)) for p in parts]
    overlap = [len(terms & _terms(negation_marked_tokens(p))) + 2 * gives[i] for i, p in enumerate(parts)]
    best = max(range(len(parts)), key=lambda i: (overlap[i], gives[i], -i))
    start, end = best, best + 1
    size = len(parts[best])
    while True:
        grown = False
        for nxt in (end, start - 1):  # the sentence after, then the one before
            if 0 <= nxt < len(parts) and not start <= nxt < end and size + 1 + len(parts[nxt]) <= limit:
                size += 1 + len(parts[nxt])
                start, end = min(start, nxt), max(end, nxt + 1)
                grown = True
        if not grown:
            break
    body = " ".join(parts[start:end])
    if len(body) > limit:
        body = body[: limit - 1].rsplit(" ", 1)[0] + " …"
    return ("… " if start > 0 else "") + body + (" …" if end < len(parts) and not body.endswith("…") else "")


CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Folders whose contents are the system's, not documents (``kb add`` needs ``--force``).
SYSTEM_FOLDERS = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/run",
    "/snap",
    "/opt",
    "/private/etc",
    "/System",
    "/Library",
    "/Applications",
)


def system_folder(path: Path) -> str | None:
    """What makes ``path`` a system location (the root, the home folder itself, a folder of
    the operating system or a hidden folder such as ~/.ssh), or None."""
    resolved = path.resolve()
    if resolved == Path(resolved.anchor):
        return "the file system's root"
    if resolved == Path.home().resolve():
        return "your home folder (with its hidden configuration and keys)"
    if os.name == "nt":
        windir = Path(os.environ.get("SYSTEMROOT", r"C:\Windows"))
        for folder in (windir, Path(r"C:\Program Files"), Path(r"C:\Program Files (x86)")):
            if resolved == folder or folder in resolved.parents:
                return f"a system folder ({folder})"
    for name in SYSTEM_FOLDERS:
        folder = Path(name)
        if resolved == folder or folder in resolved.parents:
            return f"a system folder ({folder})"
    if any(part.startswith(".") and part not in (".", "..") for part in resolved.parts):
        return "a hidden folder"
    return None


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-_")[:64]
    return name or "corpus"


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


@dataclass
class AddedCorpus:
    """What ``kb add`` indexed: the corpus name, passages, files, and each file skipped with why."""

    name: str
    passages: int
    files: int
    skipped: list[SkippedDocument] = field(default_factory=list)


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
    #: Where the passage comes from (never a full path) and its licence.
    reference: str = ""
    licence: str = ""
    #: Cosine similarity to the query, and the query's words it shares (relevance evidence).
    dense: float = 0.0
    matched: tuple[str, ...] = ()


def _hit(p: Passage, score: float, text: str, dense: float = 0.0, matched: tuple[str, ...] = ()) -> SearchHit:
    reference, licence = provenance(p)
    return SearchHit(
        source=p.source,
        id=p.id,
        score=score,
        text=text,
        citation=p.citation,
        title=p.title,
        mesh=tuple(p.mesh),
        reference=reference,
        licence=licence,
        dense=round(dense, 4),
        matched=matched,
    )


class _Keywords:
    """A corpus's keyword statistics as arrays, saved beside its index (``keywords.npz``) so a
    process loads them instead of recounting every passage's tokens:

    - BM25 (Okapi, k1 1.5, b 0.75, as ``rank_bm25.BM25Okapi`` computes it: its idf, document
      lengths and average length are taken from it when the index is built) over an inverted
      list of each token's passages and counts; :meth:`bm25` gives the scores ``get_scores``
      gives, to the bit;
    - the informative stemmed words (:func:`query_terms`) with the passages they occur in.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.k1, self.b, self.avgdl = (float(x) for x in arrays["params"])
        self.doc_len = arrays["doc_len"]
        self.count = len(self.doc_len)
        self._tokens = {t: i for i, t in enumerate(arrays["vocab"].tolist())}
        self._stems = {t: i for i, t in enumerate(arrays["stems"].tolist())}

    @classmethod
    def build(cls, tokens: list[list[str]]) -> _Keywords:
        """The statistics of passages tokenised as ``tokens``."""
        from rank_bm25 import BM25Okapi

        okapi = BM25Okapi(tokens or [[""]])
        vocab = sorted(okapi.idf)
        where = {t: i for i, t in enumerate(vocab)}
        postings: list[list[tuple[int, int]]] = [[] for _ in vocab]
        for doc, freqs in enumerate(okapi.doc_freqs):
            for token, n in freqs.items():
                postings[where[token]].append((doc, n))
        stem_docs: dict[str, list[int]] = {}
        for doc, words in enumerate(tokens):
            for term in _terms(words):
                stem_docs.setdefault(term, []).append(doc)
        stems = sorted(stem_docs)
        arrays = {
            "params": np.array([okapi.k1, okapi.b, okapi.avgdl], dtype=np.float64),
            "doc_len": np.array(okapi.doc_len, dtype=np.int64),
            "vocab": np.array(vocab, dtype=str),
            "idf": np.array([okapi.idf[t] for t in vocab], dtype=np.float64),
            **_flat("token", postings),
            "stems": np.array(stems, dtype=str),
            **_flat("stem", [[(doc, 1) for doc in stem_docs[t]] for t in stems]),
        }
        if not tokens:  # rank_bm25 was given one empty passage; an empty corpus has none
            arrays["doc_len"] = arrays["doc_len"][:0]
        return cls(arrays)

    def bm25(self, query: list[str]) -> np.ndarray:
        """BM25 scores (float64, one per passage) of the query tokens ``query``."""
        a = self.arrays
        score = np.zeros(self.count)
        for token in query:  # a repeated token counts again, as in rank_bm25
            i = self._tokens.get(token)
            if i is None:
                continue
            start, end = a["token_start"][i], a["token_start"][i + 1]
            docs, freq = a["token_docs"][start:end], a["token_counts"][start:end]
            norm = self.k1 * (1 - self.b + self.b * self.doc_len[docs] / self.avgdl)
            score[docs] += a["idf"][i] * (freq * (self.k1 + 1) / (freq + norm))
        return score

    def passages_with(self, terms: frozenset[str]) -> np.ndarray:
        """Which passages (a boolean mask) contain any of the stemmed words ``terms``."""
        a = self.arrays
        found = np.zeros(self.count, dtype=bool)
        for term in terms:
            i = self._stems.get(term)
            if i is not None:
                found[a["stem_docs"][a["stem_start"][i] : a["stem_start"][i + 1]]] = True
        return found

    def frequency(self, term: str) -> int:
        """In how many passages the stemmed word ``term`` occurs."""
        i = self._stems.get(term)
        return 0 if i is None else int(self.arrays["stem_start"][i + 1] - self.arrays["stem_start"][i])

    def save(self, path: Path, stamp: str) -> None:
        """Write the arrays to ``path`` (owner-only, under a temporary name first), tagged with
        the index's ``stamp``."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.npz")
        arrays: dict[str, Any] = {"stamp": np.array(stamp, dtype=str), **self.arrays}
        np.savez(tmp, **arrays)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, stamp: str, count: int) -> _Keywords | None:
        """The arrays saved at ``path`` for ``stamp`` and ``count`` passages, or None."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays: dict[str, np.ndarray] = {name: data[name] for name in data.files}
            saved = str(arrays.pop("stamp", ""))
            if saved != stamp or len(arrays.get("doc_len", ())) != count:
                return None
            return cls(arrays)
        except (OSError, ValueError, EOFError, KeyError) as exc:  # damaged: counted again
            if path.exists():
                log.warning("recounting the keywords of %s: %s", path.parent.name, exc)
            return None


def _flat(name: str, lists: list[list[tuple[int, int]]]) -> dict[str, np.ndarray]:
    """Lists of (passage, count) as flat arrays: ``<name>_docs``, ``<name>_counts`` and the
    start of each list in them, ``<name>_start`` (one more than lists, ending at the total)."""
    start = np.zeros(len(lists) + 1, dtype=np.int64)
    start[1:] = np.cumsum([len(x) for x in lists])
    pairs = np.array([pair for x in lists for pair in x], dtype=np.int64).reshape(-1, 2)
    out: dict[str, np.ndarray] = {f"{name}_start": start, f"{name}_docs": pairs[:, 0].astype(np.int32)}
    if name != "stem":
        out[f"{name}_counts"] = pairs[:, 1]
    return out


@dataclass
class _Corpus:
    name: str
    passages: list[Passage]
    vectors: np.ndarray
    tokens: list[list[str]]
    labels: list[dict[str, Any]]
    keywords: _Keywords
    #: Informative stemmed words per passage (built on first need; searches use ``keywords``).
    terms: list[frozenset[str]] | None = None

    def words(self) -> list[frozenset[str]]:
        """Each passage's informative stemmed words."""
        if self.terms is None:
            self.terms = [_terms(t) for t in self.tokens]
        return self.terms

    def specific(self, terms: frozenset[str]) -> frozenset[str]:
        """Those of ``terms`` found in some passages but few (:data:`SPECIFIC_FEW`, :data:`SPECIFIC_SHARE`)
        (words asking for a kind of answer, "differential", "next", are never specific)."""
        limit = max(SPECIFIC_FEW, SPECIFIC_SHARE * len(self.passages))
        return frozenset(t for t in terms - _KIND_TERMS if 0 < self.keywords.frequency(t) <= limit)


class KnowledgeIndex:
    """All corpora, loaded (or built) lazily; thread-safe for queries."""

    def __init__(self, settings: Settings | None = None, *, iu_limit: int | None = None) -> None:
        self.settings = settings or get_settings()
        self.embedder = Embedder(self.settings)
        self.iu_limit = iu_limit if iu_limit is not None else self.settings.kb_iu_limit
        self._corpora: dict[str, _Corpus] | None = None
        self._lock = threading.Lock()
        self._background: threading.Thread | None = None
        self._background_lock = threading.Lock()

    @property
    def root(self) -> Path:
        """Where index files are stored."""
        return self.settings.data_dir / "kb"

    # -- corpus registry ---------------------------------------------------------------
    def _user_corpora_file(self) -> Path:
        return self.root / "user_corpora.json"

    def _registry(self) -> dict[str, dict[str, Any]]:
        """Registered user corpora: name -> {"path", "added", "passages", "files", "bytes"}."""
        try:
            raw = json.loads(self._user_corpora_file().read_text())
        except (FileNotFoundError, ValueError, OSError):
            return {}
        if not isinstance(raw, dict):
            return {}
        # Older registries mapped name -> path.
        return {str(k): (v if isinstance(v, dict) else {"path": str(v)}) for k, v in raw.items()}

    def _write_registry(self, registry: dict[str, dict[str, Any]]) -> None:
        private_dir(self.root)
        tmp = self._user_corpora_file().with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(registry, indent=2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._user_corpora_file())

    def user_corpora(self) -> dict[str, str]:
        """User corpora added with ``copilot kb add``: name -> path."""
        return {name: str(entry.get("path", "")) for name, entry in self._registry().items()}

    def list_corpora(self) -> list[dict[str, Any]]:
        """Every corpus: the built-in ones, then the user's (name, kind, path, passages...)."""
        out: list[dict[str, Any]] = []
        for name in (KB_SOURCE, IU_SOURCE):
            meta = _read_meta(self.root / name)
            out.append({"name": name, "kind": "built-in", "passages": meta.get("count")})
        for name, entry in sorted(self._registry().items()):
            meta = _read_meta(self.root / name)
            out.append(
                {
                    "name": name,
                    "kind": "user",
                    "path": entry.get("path", ""),
                    "passages": meta.get("count", entry.get("passages")),
                    "files": entry.get("files"),
                    "bytes": entry.get("bytes"),
                    "added": entry.get("added"),
                    "indexed": (self.root / name / "meta.json").exists(),
                }
            )
        return out

    def add_corpus(self, path: Path, name: str | None = None, progress: Progress | None = None) -> int:
        """Add a user corpus (see :meth:`add`); returns its number of passages."""
        return self.add(path, name, progress=progress).passages

    def add(
        self,
        path: Path,
        name: str | None = None,
        *,
        progress: Progress | None = None,
        force: bool = False,
        replace: bool = False,
    ) -> AddedCorpus:
        """Validate, read and embed a user corpus into a temporary folder; register it only
        when all of that succeeded (a failure leaves the knowledge base as it was).

        Refused: a missing path, a reserved, malformed or taken name (unless ``replace``), a
        system folder (unless ``force``), files adding up to more than ``kb_max_total_mb``, and
        a corpus with no text. Files above ``kb_max_file_mb``, not UTF-8 text, or partly
        malformed are skipped with their reason (in the returned report).
        """
        path = path.expanduser()
        if not path.exists():
            raise CopilotError(f"{path}: no such file or folder")
        path = path.resolve()
        name = name or _safe_name(path.stem or path.name)
        if not CORPUS_NAME.fullmatch(name):
            raise CopilotError(
                f"invalid corpus name {name!r}: use letters, digits, '.', '_' and '-' (at most 64), "
                "starting with a letter or digit"
            )
        if name in (IU_SOURCE, KB_SOURCE):
            raise CopilotError(f"corpus name {name!r} is reserved")
        registry = self._registry()
        if name in registry and not replace:
            raise CopilotError(
                f"a corpus named {name!r} already exists (from {registry[name].get('path')}); choose "
                f"another --name, or replace it with --replace (or 'copilot kb remove {name}')"
            )
        system = system_folder(path)
        if system and not force:
            raise CopilotError(
                f"{path} is {system}; adding it would index system files. Pass --force if you mean it"
            )
        limit_file = int(self.settings.kb_max_file_mb * 2**20)
        limit_total = int(self.settings.kb_max_total_mb * 2**20)
        listing = list_user_files(path, limit_file)
        if listing.total_bytes > limit_total:
            raise CopilotError(
                f"{path}: {len(listing.files)} files of {listing.total_bytes / 2**20:.0f} MB, above the "
                f"{limit_total / 2**20:.0f} MB limit for one corpus (COPILOT_KB_MAX_TOTAL_MB)"
            )
        skipped = list(listing.skipped)
        passages: list[Passage] = []
        for n, file in enumerate(listing.files, start=1):
            found, why = read_user_file(Path(file), name)
            passages += found
            if why:
                skipped.append(SkippedDocument(path=file, reason=why))
            if progress:
                progress("reading", n, len(listing.files))
        if not passages:
            reasons = "; ".join(f"{Path(k.path).name}: {k.reason}" for k in skipped[:3])
            raise CopilotError(
                f"{path}: no .txt, .md or .jsonl passages found" + (f" ({reasons})" if reasons else "")
            )
        private_dir(self.root)
        tmp = Path(tempfile.mkdtemp(prefix=f".add-{name}-", dir=self.root))
        try:
            self._build(name, tmp, passages, stamp=f"user|{self.embedder.model_id}", progress=progress)
            final = self.root / name
            with self._lock:
                old = None
                if final.exists():
                    old = final.with_name(f".old-{name}-{os.getpid()}")
                    os.replace(final, old)
                os.replace(tmp, final)
                registry = self._registry()
                registry[name] = {
                    "path": str(path),
                    "added": datetime.now(UTC).isoformat(timespec="seconds"),
                    "passages": len(passages),
                    "files": len(listing.files),
                    "bytes": listing.total_bytes,
                }
                self._write_registry(registry)
                self._corpora = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return AddedCorpus(name=name, passages=len(passages), files=len(listing.files), skipped=skipped)

    def remove(self, name: str) -> None:
        """Unregister a user corpus and delete its index."""
        if name in (IU_SOURCE, KB_SOURCE):
            raise CopilotError(f"{name!r} is built in and cannot be removed")
        registry = self._registry()
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise CopilotError(f"no user corpus named {name!r} (user corpora: {known})")
        with self._lock:
            del registry[name]
            self._write_registry(registry)
            self._corpora = None
        if CORPUS_NAME.fullmatch(name):
            shutil.rmtree(self.root / name, ignore_errors=True)

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
        return out

    # -- building and loading ----------------------------------------------------------
    def _load_or_build(
        self, name: str, paths: list[Path], reader: Callable[[], Any], progress: Progress | None
    ) -> _Corpus:
        folder = self.root / name
        stamp = self._stamp(name, paths)
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
        return self._build(name, folder, passages, stamp=stamp, progress=progress, resumable=True)

    def _stamp(self, name: str, paths: list[Path]) -> str:
        return f"{fingerprint(paths)}|{self.embedder.model_id}|{self.iu_limit if name == IU_SOURCE else ''}"

    def missing(self) -> str | None:
        """What is not built yet (a built-in corpus or the query encoder), or None when the
        index is ready to search. Cheap (file metadata only): tools ask it before searching."""
        if self._corpora is not None and self.embedder.exported():
            return None
        for name, paths, _ in self._sources():
            if _read_meta(self.root / name).get("stamp") != self._stamp(name, paths):
                return f"the {name} corpus is not indexed"
        if not self.embedder.exported():
            return "the query encoder is not exported"
        return None

    def state(self) -> str:
        """A short digest of what a search would read (each corpus's stamp, the user corpora):
        it changes when the index is rebuilt, so cached results of an older index are not reused."""
        import hashlib

        stamps = [_read_meta(self.root / name).get("stamp", "") for name, _, _ in self._sources()]
        stamps += sorted(f"{n}={row.get('added', '')}" for n, row in self._registry().items())
        return hashlib.sha256("|".join(map(str, stamps)).encode()).hexdigest()[:16]

    @property
    def building(self) -> bool:
        """Whether :meth:`build_in_background` is building the index now."""
        return self._background is not None and self._background.is_alive()

    def build_in_background(self, progress: Progress | None = None) -> bool:
        """Start building what :meth:`missing` names in a daemon thread; False when there is
        nothing to build or a build runs already. The build is resumable: a process that exits
        meanwhile keeps the chunks embedded so far (``copilot.runtime.deadline`` ends it before
        interpreter shutdown could abort it), and the next build continues from them."""
        from copilot.runtime.deadline import start_daemon

        if self.building or self.missing() is None:
            return False

        def build() -> None:
            try:
                self.corpora(progress=progress)
            except Exception as exc:  # reported where the retriever is asked, with the fix
                log.warning("background build of the knowledge index failed: %s", exc)

        with self._background_lock:
            if self.building:
                return False
            self._background = start_daemon(build, "copilot-kb-build")
        return True

    def _build(
        self,
        name: str,
        folder: Path,
        passages: list[Passage],
        *,
        stamp: str,
        progress: Progress | None,
        resumable: bool = False,
    ) -> _Corpus:
        """Embed ``passages`` and write the index files into ``folder`` (owner-only). A
        ``resumable`` build saves its vectors in ``folder/partial`` as they are made, so an
        interrupted one continues there; the index files are written only when all are done."""
        # The dataset's own de-identification marker is indexed in its short legacy form: the
        # words of the long one ("de-identified in source") would match queries about nothing
        # in the report (precision@5 0.746 vs 0.777 in bench/retrieval.py). Display is unchanged.
        texts = [p.text.replace(DEIDENTIFIED, LEGACY_DEIDENTIFIED) for p in passages]

        def on_progress(done: int, total: int) -> None:
            if progress:
                progress(name, done, total)

        private_dir(folder)
        (folder / "meta.json").unlink(missing_ok=True)  # the old index is invalid from here on
        partial = folder / "partial" if resumable else None
        vectors = self.embedder.encode(texts, batch_size=16, progress=on_progress, resume=partial)
        tokens = [negation_marked_tokens(t) for t in texts]
        labels = [dict(label_text(t)) for t in texts]
        with open(folder / "passages.jsonl", "w", encoding="utf-8") as fh:
            for p, tok, lab in zip(passages, tokens, labels, strict=True):
                fh.write(json.dumps({"passage": p.model_dump(), "tokens": tok, "labels": lab}) + "\n")
        np.save(folder / "vectors.npy", vectors)
        keywords = _Keywords.build(tokens)
        keywords.save(folder / KEYWORDS_FILE, stamp)
        (folder / "meta.json").write_text(json.dumps({"stamp": stamp, "count": len(passages)}))
        for file in folder.iterdir():
            if file.is_file():
                os.chmod(file, 0o600)
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        log.info("indexed %s: %d passages", name, len(passages))
        return _Corpus(name, passages, vectors, tokens, labels, keywords)

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
        stamp = str(_read_meta(folder).get("stamp", ""))
        keywords = _Keywords.load(folder / KEYWORDS_FILE, stamp, len(passages))
        if keywords is None:  # an index built before keywords were saved: counted once, then kept
            keywords = _Keywords.build(tokens)
            try:
                keywords.save(folder / KEYWORDS_FILE, stamp)
            except OSError as exc:
                log.debug("could not save the keywords of %s: %s", name, exc)
        return _Corpus(name, passages, vectors, tokens, labels, keywords)

    def corpora(self, progress: Progress | None = None) -> dict[str, _Corpus]:
        """Every corpus: the built-ins loaded or built once, user corpora as ``kb add`` stored
        them (never rebuilt by a search). A damaged user corpus is left out with a warning."""
        progress = progress or _listening()
        with self._lock:
            if self._corpora is None:
                corpora = {
                    name: self._load_or_build(name, paths, reader, progress)
                    for name, paths, reader in self._sources()
                }
                for name in self._registry():
                    if name in corpora or not CORPUS_NAME.fullmatch(name):
                        continue
                    try:
                        corpora[name] = self._load(name, self.root / name)
                    except (OSError, ValueError, KeyError) as exc:
                        log.warning(
                            "knowledge corpus %r is damaged and left out (%s); add it again with "
                            "'copilot kb add --replace' or remove it with 'copilot kb remove %s'",
                            name,
                            exc,
                            name,
                        )
                self._corpora = corpora
            return self._corpora

    # -- searching ---------------------------------------------------------------------
    def get(self, source: str, passage_id: str) -> SearchHit | None:
        """One passage by source and id (e.g. the knowledge card of a finding), or None."""
        corpus = self.corpora().get(source)
        if corpus is None:
            return None
        for p in corpus.passages:
            if p.id == passage_id:
                return _hit(p, 1.0, shown_text(p))
        return None

    def search(
        self,
        query: str,
        k: int = 5,
        sources: list[str] | None = None,
        mode: Mode = "hybrid",
        *,
        relevant_only: bool = False,
    ) -> list[SearchHit]:
        """The ``k`` best passages for ``query`` across corpora (optionally only ``sources``),
        each cut to the sentences around its match. ``relevant_only`` keeps only passages that
        pass the relevance test (see the module docstring): possibly none."""
        if not query.strip():
            return []
        corpora = self.corpora()
        unknown = [s for s in sources or [] if s not in corpora]
        if unknown:
            raise CopilotError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(corpora)}")
        qvec = self.embedder.encode([query])[0]
        wanted = {f for f, s in label_text(query).items() if s == "present"}
        qtokens = negation_marked_tokens(query)
        terms = query_terms(query)
        scored: list[tuple[float, _Corpus, int, float]] = []
        for name, corpus in corpora.items():
            if (sources and name not in sources) or not corpus.passages:
                continue
            dense = corpus.vectors @ qvec
            if mode == "hybrid":
                keyword = np.asarray(corpus.keywords.bm25(qtokens), dtype=np.float32)
                top = float(keyword.max()) if keyword.size else 0.0
                keyword = keyword / top if top > 0 else keyword
                score = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * keyword
                if wanted:
                    negates = np.array([any(lab.get(f) == "absent" for f in wanted) for lab in corpus.labels])
                    score = np.where(negates, -np.inf, score)
            else:
                score = dense
            if relevant_only:
                relevant = (dense >= MIN_DENSE) & corpus.keywords.passages_with(terms)
                specific = corpus.specific(terms)
                if specific and mode == "hybrid":  # a rare word MiniLM does not know ("Fleischner")
                    has = corpus.keywords.passages_with(specific)
                    relevant |= has & (keyword >= MIN_KEYWORD) & (dense >= MIN_DENSE_SPECIFIC)
                score = np.where(relevant, score, -np.inf)
            best = np.argsort(-score)[:k]
            scored.extend(
                (float(score[i]), corpus, int(i), float(dense[i])) for i in best if np.isfinite(score[i])
            )
        scored.sort(key=lambda t: -t[0])
        hits = []
        for score, corpus, i, similarity in scored[:k]:
            p = corpus.passages[i]
            matched = tuple(sorted(terms & _terms(corpus.tokens[i])))
            hits.append(_hit(p, round(score, 4), excerpt(shown_text(p), query), similarity, matched))
        return hits


_listeners: list[Progress] = []
_listeners_lock = threading.Lock()


@contextmanager
def reporting_builds(progress: Progress) -> Iterator[None]:
    """While active, a build of the built-in corpora started without a progress callback of
    its own (a tool loading the index on first use, in any thread) reports to ``progress``
    (corpus name, distinct texts embedded, total): the command line and the terminal app show
    a bar for the build that a question triggers, and nothing when the index is ready."""
    with _listeners_lock:
        _listeners.append(progress)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(progress)


def _listening() -> Progress | None:
    """A callback reporting to every active :func:`reporting_builds` listener, or None."""
    with _listeners_lock:
        if not _listeners:
            return None
        active = list(_listeners)

    def report(name: str, done: int, total: int) -> None:
        for listener in active:
            listener(name, done, total)

    return report


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
