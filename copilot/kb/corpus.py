"""Text corpora for the retriever: the IU chest X-ray reports, the shipped knowledge cards,
and users' own documents (text, Markdown, JSONL).

The IU reports are CC BY-NC-ND 4.0, so their text never enters this repository: they are read
from the copy inside the installed ``torchxrayvision`` wheel, or a path the user gives.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from copilot.errors import CopilotError

log = logging.getLogger(__name__)

IU_SOURCE = "iu-xray"
KB_SOURCE = "knowledge"
#: Where the IU reports come from and their licence (shown with every citation of one).
IU_REFERENCE = "Indiana University Chest X-ray Collection (Open-i)"
IU_LICENCE = "CC BY-NC-ND 4.0"
#: The knowledge cards are written for this project (its licence), each summarising the source
#: it names.
CARD_LICENCE = "Apache-2.0"
#: How the IU dataset's own de-identification ("XXXX" in its reports) is shown: it was done by
#: the dataset's authors, not by the copilot. Older indexes stored "[redacted]".
DEIDENTIFIED = "[de-identified in source]"
LEGACY_DEIDENTIFIED = "[redacted]"


class Passage(BaseModel):
    """One retrievable passage with its citation."""

    source: str
    id: str
    text: str
    title: str = ""
    indication: str = ""
    mesh: list[str] = Field(default_factory=list)
    citation: str = ""


_PATH_LIKE = re.compile(r"(?:~|[A-Za-z]:)?[\\/]?(?:[^\\/\s]+[\\/])+([^\\/\s]+)")


def provenance(passage: Passage) -> tuple[str, str]:
    """(reference, licence) shown with a passage: the IU collection (Open-i) and its licence,
    a card's own source line, or a user document's file name (never its folder)."""
    if passage.source == IU_SOURCE:
        return f"{IU_REFERENCE}, report {passage.id}", IU_LICENCE
    if passage.source == KB_SOURCE:
        return f"copilot knowledge card after {passage.citation or 'its sources'}", CARD_LICENCE
    return _PATH_LIKE.sub(r"\1", passage.citation or passage.id), ""


def shown_text(passage: Passage) -> str:
    """A passage's text as shown: IU reports' own de-identification marked as the dataset's."""
    if passage.source == IU_SOURCE:
        return passage.text.replace(LEGACY_DEIDENTIFIED, DEIDENTIFIED)
    return passage.text


def default_iu_path() -> Path | None:
    """``NLMCXR_reports.tgz`` inside the installed torchxrayvision wheel, if present.

    Found from the package's location, without importing it: importing torchxrayvision loads
    torch and scikit-image (5 s on 2 cores), which every build and load of the index paid."""
    try:
        spec = importlib.util.find_spec("torchxrayvision")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "data" / "NLMCXR_reports.tgz"
        if path.exists():
            return path
    return None


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", re.sub(r"X{4,}", DEIDENTIFIED, text or "")).strip()


def read_iu_reports(path: Path) -> Iterator[Passage]:
    """Parse the IU reports archive: one passage per report with findings and impression."""
    import tarfile  # here, not at import: the planner imports this module's constants
    import xml.etree.ElementTree as ET

    try:
        archive = tarfile.open(path, "r:gz")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise CopilotError(f"cannot read the IU report corpus {path}: {exc}") from exc
    with archive:
        for member in archive:
            if not member.isfile() or not member.name.endswith(".xml"):
                continue
            fh = archive.extractfile(member)
            if fh is None:
                continue
            try:
                root = ET.parse(fh).getroot()
            except ET.ParseError:
                log.warning("skipping malformed report %s", member.name)
                continue
            sections = {(el.get("Label") or "").upper(): _clean(el.text) for el in root.iter("AbstractText")}
            findings, impression = sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")
            if not findings and not impression:
                continue
            uid = root.find("uId")
            report_id = uid.get("id", "") if uid is not None else Path(member.name).stem
            text = " ".join(
                p
                for p in (
                    f"FINDINGS: {findings}" if findings else "",
                    f"IMPRESSION: {impression}" if impression else "",
                )
                if p
            )
            yield Passage(
                source=IU_SOURCE,
                id=report_id,
                text=text,
                indication=sections.get("INDICATION", ""),
                mesh=[m.text for m in root.iter("major") if m.text],
                citation=f"{IU_REFERENCE}, report {report_id} ({IU_LICENCE})",
            )


def read_knowledge_cards() -> Iterator[Passage]:
    """The curated knowledge cards shipped with the package (one per classifier finding)."""
    folder = resources.files("copilot.kb").joinpath("cards")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        text = entry.read_text(encoding="utf-8")
        title = text.splitlines()[0].lstrip("# ").strip()
        source = re.search(r"^Source:\s*(.+)$", text, re.MULTILINE)
        body = re.sub(r"^#.*\n|^Source:.*$", "", text, flags=re.MULTILINE).strip()
        yield Passage(
            source=KB_SOURCE,
            id=entry.name[:-3],
            title=title,
            text=f"{title}. {body}",
            citation=source.group(1).strip() if source else "copilot knowledge base",
        )


#: File kinds a user corpus may hold.
USER_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


class SkippedDocument(BaseModel):
    """A file of a user corpus that was not indexed, with the reason."""

    path: str
    reason: str


class CorpusFiles(BaseModel):
    """The files ``kb add`` would index (within the size limits) and those it skips."""

    files: list[str] = Field(default_factory=list)
    total_bytes: int = 0
    skipped: list[SkippedDocument] = Field(default_factory=list)


def list_user_files(path: Path, max_file_bytes: int) -> CorpusFiles:
    """The text, Markdown and JSONL files under ``path`` within ``max_file_bytes`` each.

    Hidden files and folders (``.git``, ``.ssh``) and symbolic links are not followed; files of
    other kinds are skipped silently in a folder and with a reason when named directly.
    """
    out = CorpusFiles()

    def consider(file: Path, named: bool) -> None:
        if file.is_symlink():
            out.skipped.append(SkippedDocument(path=str(file), reason="symbolic link (not followed)"))
            return
        if file.suffix.lower() not in USER_SUFFIXES:
            if named:
                out.skipped.append(
                    SkippedDocument(path=str(file), reason=f"not a {', '.join(USER_SUFFIXES)} file")
                )
            return
        try:
            size = file.stat().st_size
        except OSError as exc:
            out.skipped.append(SkippedDocument(path=str(file), reason=f"cannot read: {exc.strerror or exc}"))
            return
        if size > max_file_bytes:
            out.skipped.append(
                SkippedDocument(
                    path=str(file),
                    reason=f"{size / 2**20:.1f} MB, above the {max_file_bytes / 2**20:.0f} MB per-file limit "
                    "(COPILOT_KB_MAX_FILE_MB)",
                )
            )
            return
        out.files.append(str(file))
        out.total_bytes += size

    if path.is_file():
        consider(path, named=True)
        return out
    for folder, dirs, names in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                consider(Path(folder) / name, named=False)
    return out


def _text_of(file: Path) -> str:
    """A file's text; :class:`UnicodeDecodeError` (or ValueError for binary data) otherwise."""
    data = file.read_bytes()
    if b"\x00" in data[:65536]:
        raise ValueError("binary data (NUL bytes), not text")
    return data.decode("utf-8")


def read_user_file(file: Path, source: str) -> tuple[list[Passage], str | None]:
    """One file's passages and, when some or all of it was skipped, why (never raises for bad
    content: a file that is not UTF-8 text is skipped with its reason)."""
    try:
        text = _text_of(file)
    except UnicodeDecodeError as exc:
        return [], f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    except ValueError as exc:
        return [], str(exc)
    except OSError as exc:
        return [], f"cannot read: {exc.strerror or exc}"
    passages: list[Passage] = []
    if file.suffix.lower() != ".jsonl":
        chunks = [c.strip() for c in re.split(r"\n\s*\n", text) if c.strip()]
        for n, chunk in enumerate(chunks, start=1):
            passages.append(
                Passage(
                    source=source, id=f"{file.stem}:{n}", text=chunk, citation=f"{file.name}, paragraph {n}"
                )
            )
        return passages, None if passages else "no text"
    bad: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad.append(f"line {n}: not JSON")
            continue
        if not isinstance(row, dict) or not str(row.get("text", "")).strip():
            bad.append(f"line {n}: no 'text' field")
            continue
        passages.append(
            Passage(
                source=source,
                id=str(row.get("id", f"{file.stem}:{n}")),
                text=str(row["text"]),
                title=str(row.get("title", "")),
                citation=str(row.get("citation", f"{file.name} line {n}")),
            )
        )
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return passages, f"{len(bad)} line(s) skipped: {bad[0]}{more}"
    return passages, None if passages else "no text"


def read_user_corpus(path: Path, source: str) -> Iterator[Passage]:
    """A user's documents: .txt/.md files (split on blank lines) or JSONL ({"id", "text"});
    files that are not text are left out (``kb add`` reports them)."""
    for file in list_user_files(path, max_file_bytes=2**62).files:
        yield from read_user_file(Path(file), source)[0]


def fingerprint(paths: list[Path]) -> str:
    """A hash of files' names, sizes and mtimes: changes when a corpus changes."""
    digest = hashlib.sha256()
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            digest.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]
