"""Notebook display of untrusted values: Markdown and HTML tables, and Markdown text made inert.

What a notebook shows of a study, an answer or an analysis (``_repr_markdown_`` and
``_repr_html_``) holds DICOM header values, tool output and answer text: data, never markup. The
rules:

- every value in a table cell goes through :func:`markdown_cell` or :func:`html.escape` (with
  control characters made visible first, :func:`copilot.escape.escape_controls`), so a
  ``<script>`` in a StudyDescription is shown as text and a ``|`` cannot open a column;
- Markdown text (an answer) keeps its formatting but cannot carry raw HTML
  (:func:`markdown_text`); rendered to HTML (:func:`markdown_html`) raw HTML is escaped and
  links other than http(s), mailto and relative ones are refused (markdown-it's link check).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from copilot.escape import escape_controls

__all__ = ["Cell", "html_table", "markdown_cell", "markdown_html", "markdown_table", "markdown_text"]

#: A table cell's value before it is written: text, a number, or nothing (shown empty).
Cell = str | int | float | bool | None

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")


def _text(value: Cell) -> str:
    """A cell's value as one line of visible text (floats to 4 significant digits)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape_controls(str(value), keep="\n").replace("\n", " ")


def markdown_cell(value: Cell) -> str:
    """``value`` as literal text in a Markdown table cell: Markdown punctuation backslash-escaped,
    ``& < >`` written as entities, newlines as spaces."""
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", _text(value)), quote=False)


def markdown_text(text: str) -> str:
    """Markdown ``text`` with its formatting kept but no raw HTML: ``&`` and ``<`` written as
    entities (a tag or an entity cannot start), control characters made visible."""
    return escape_controls(text, keep="\n\t").replace("&", "&amp;").replace("<", "&lt;")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` under ``headers``, every cell escaped."""
    lines = [
        "| " + " | ".join(markdown_cell(h) for h in headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """An HTML ``<table>`` of ``rows`` under ``headers``, every cell escaped."""
    head = "".join(f"<th>{html.escape(_text(h))}</th>" for h in headers)
    cells = ("".join(f"<td>{html.escape(_text(c))}</td>" for c in row) for row in rows)
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_html(text: str) -> str:
    """Markdown ``text`` rendered to HTML (CommonMark with tables) with raw HTML escaped, not
    passed through, and unsafe link schemes (``javascript:``, ``data:``...) refused."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return renderer.render(escape_controls(text, keep="\n\t"))
