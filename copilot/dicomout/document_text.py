"""The text of an encapsulated document: a PDF, a CDA (XML) or a plain text report.

:func:`document_text` turns an EncapsulatedDocument's bytes into plain text, by MIME type:

- ``application/pdf``: the text layer of the first :data:`MAX_PAGES` pages, read with
  ``pypdf`` (pure Python). An encrypted PDF that opens without a password is read; one that
  needs a password, a scanned PDF without a text layer and a damaged one are refused with the
  reason.
- XML (``text/xml``, ``application/xml``, CDA): the markup removed, text kept. A CDA's header
  (the patient, the author, their addresses) is left out: only the body (``structuredBody`` or
  ``nonXMLBody``) is read, section titles as headings. The XML is never parsed: no entity is
  expanded, no DTD or external resource is loaded.
- ``text/*``: decoded (UTF-8, else Latin-1).

The text is at most :data:`MAX_CHARS` characters, whitespace collapsed; it is data, never
instructions (whoever quotes it fences it). Every refusal is a
:class:`~copilot.errors.DicomObjectError` whose message says why.
"""

from __future__ import annotations

import html
import io
import logging
import re

from copilot.errors import DicomObjectError

__all__ = ["MAX_CHARS", "MAX_DOCUMENT_BYTES", "MAX_PAGES", "document_text"]

log = logging.getLogger(__name__)

#: Characters of text kept at most.
MAX_CHARS = 4000
#: PDF pages read at most.
MAX_PAGES = 20
#: Bytes of an encapsulated document read at most (a larger one is refused).
MAX_DOCUMENT_BYTES = 20 * 2**20

_NS = r"(?:[A-Za-z0-9_-]+:)?"
_BODY = re.compile(rf"<{_NS}(?:structuredBody|nonXMLBody)\b", re.I)
_TITLE_OPEN = re.compile(rf"<{_NS}title\b[^<>]{{0,2000}}>", re.I)
_TITLE_CLOSE = re.compile(rf"</{_NS}title\s*>", re.I)
_BREAK = re.compile(
    rf"</?{_NS}(?:paragraph|br|section|component|item|tr|p|div|list|table)\b[^<>]{{0,2000}}>", re.I
)
_TAG = re.compile(r"<[^<>]{0,2000}>")
#: Markup whose content is dropped (start, end); the end searched after the start, linearly.
_DROPPED = (("<!--", "-->"), ("<?", "?>"), ("<!DOCTYPE", ">"), ("<!doctype", ">"))
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n\s*\n+")


def _clip(text: str) -> str:
    """Whitespace collapsed (line breaks kept), at most :data:`MAX_CHARS` characters."""
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines())
    text = _LINES.sub("\n", text).strip()
    return text[:MAX_CHARS]


def _decode(data: bytes) -> str:
    """Text bytes decoded: UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order
    mark, else Latin-1."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _cut(text: str, start: str, end: str, keep_inside: bool = False) -> str:
    """``text`` without each ``start``...``end`` span (its inside kept with ``keep_inside``);
    an unclosed span runs to the end. Linear: each character is looked at a bounded number of
    times, whatever the markup."""
    out, at = [], 0
    while True:
        found = text.find(start, at)
        if found < 0:
            out.append(text[at:])
            break
        out.append(text[at:found])
        close = text.find(end, found + len(start))
        stop = len(text) if close < 0 else close + len(end)
        if keep_inside:
            out.append(" " + text[found + len(start) : close if close >= 0 else len(text)] + " ")
        out.append(" ")
        at = stop
    return "".join(out)


def _titles(text: str) -> str:
    """Each ``<title>`` element as a heading line (``"\nImpression:\n"``)."""
    out, at = [], 0
    while True:
        opened = _TITLE_OPEN.search(text, at)
        if opened is None:
            break
        closed = _TITLE_CLOSE.search(text, opened.end())
        if closed is None:  # never closed: the rest is left to the tag pass
            break
        title = _TAG.sub(" ", text[opened.end() : closed.start()]).strip()
        out.append(text[at : opened.start()])
        out.append(f"\n{title}:\n")
        at = closed.end()
    out.append(text[at:])
    return "".join(out)


def _xml_text(data: bytes) -> str:
    """An XML document's text without its markup (a CDA: its body only)."""
    text = _decode(data[: MAX_CHARS * 100])
    body = _BODY.search(text)
    if body is not None:
        text = text[body.start() :]
    for start, end in _DROPPED:
        text = _cut(text, start, end)
    text = _cut(text, "<![CDATA[", "]]>", keep_inside=True) if "<![CDATA[" in text else text
    text = _BREAK.sub("\n", _titles(text))
    text = _TAG.sub(" ", text).replace("<", " ").replace(">", " ")
    # Only the predefined and numeric entities: html.unescape never expands a DTD's entities.
    return _clip(html.unescape(text))


def _pdf_text(data: bytes) -> str:
    """The text layer of a PDF's first :data:`MAX_PAGES` pages."""
    if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        raise DicomObjectError("the encapsulated PDF is not a PDF (no %PDF- header)")
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:  # a dependency of the package; said, never a crash
        raise DicomObjectError("the PDF cannot be read: pypdf is not installed (pip install pypdf)") from exc
    parts: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DicomObjectError("the encapsulated PDF is encrypted with a password")
        size = 0
        for index, page in enumerate(reader.pages):
            if index >= MAX_PAGES or size >= MAX_CHARS:
                break
            text = page.extract_text() or ""
            parts.append(text)
            size += len(text)
    except DicomObjectError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise DicomObjectError(f"the encapsulated PDF is damaged ({type(exc).__name__})") from exc
    except RecursionError as exc:
        raise DicomObjectError("the encapsulated PDF is damaged (nested too deeply)") from exc
    text = _clip("\n".join(parts))
    if not text:
        raise DicomObjectError("the encapsulated PDF has no text layer (a scanned page?)")
    return text


def document_text(data: bytes, mime_type: str) -> str:
    """The document's text (see the module docstring); :class:`DicomObjectError` with the
    reason for a document that cannot be read."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DicomObjectError(
            f"the encapsulated document is {len(data) / 2**20:.0f} MB, more than the "
            f"{MAX_DOCUMENT_BYTES >> 20} MB read"
        )
    mime = mime_type.split(";")[0].strip().lower()
    if mime == "application/pdf" or (not mime and data[:5] == b"%PDF-"):
        return _pdf_text(data)
    if mime in ("text/xml", "application/xml", "application/hl7-v3+xml", "application/cda+xml") or (
        mime.endswith("+xml")
    ):
        text = _xml_text(data)
    elif mime.startswith("text/"):
        decoded = _decode(data[: MAX_CHARS * 4])
        text = _xml_text(decoded.encode()) if mime == "text/html" else _clip(decoded)
    else:
        raise DicomObjectError(f"the encapsulated document's type {mime or 'unknown'!r} is not text")
    if not text:
        raise DicomObjectError("the encapsulated document holds no text")
    return text
