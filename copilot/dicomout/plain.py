"""Markdown (as the composer writes answers) as plain text, for DICOM TEXT content items.

The text is parsed with markdown-it (the parser rich uses), and only its words are kept:
emphasis, code and heading marks go, list items start ``- `` on their own line, a link keeps
its text and its address in parentheses, each paragraph, heading and item on its own line. Control
characters are escaped (:func:`copilot.escape.escape_controls`), newlines and tabs kept.
"""

from __future__ import annotations

from typing import Any

from copilot.escape import escape_controls

__all__ = ["plain_text"]


def _inline(tokens: list[Any]) -> str:
    out: list[str] = []
    link: list[str] = []
    for token in tokens:
        if token.type in ("text", "code_inline", "html_inline"):
            out.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif token.type == "image":
            out.append(token.content)
        elif token.type == "link_open":
            link.append(str(token.attrs.get("href", "")))
        elif token.type == "link_close" and link:
            href = link.pop()
            if href and out[-1:] != [href]:
                out.append(f" ({href})")
    return "".join(out)


def plain_text(markdown: str) -> str:
    """``markdown`` as plain text (module rules)."""
    from markdown_it import MarkdownIt

    blocks: list[str] = []
    depth = 0
    pending_bullet = False
    for token in MarkdownIt("commonmark").parse(markdown or ""):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "list_item_open":
            pending_bullet = True
        elif token.type == "inline":
            text = _inline(token.children or [])
            if pending_bullet:
                text = "  " * (depth - 1) + "- " + text
                pending_bullet = False
            blocks.append(text)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.rstrip("\n"))
    joined = "\n".join(blocks).strip()
    return escape_controls(joined, keep="\n\t")
