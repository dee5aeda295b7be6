"""Untrusted text made safe to print, and data made safe to serialise as strict JSON.

DICOM header values, file names, tool details and plug-in output are data. On a terminal,
an escape sequence in them could set the window title, clear the screen or hide text; in
JSON, a NaN makes the document invalid. Every output path (tables, Markdown, JSON, JSONL,
exports) goes through :func:`escape_controls` or :func:`dumps`.

Escaped: C0 controls (except those the caller keeps, such as newline), DEL, C1 controls
(U+0080-U+009F: a terminal may read U+009B as CSI) and the invisible bidirectional and
zero-width format characters that reorder or hide text. Each becomes a visible ``\\xNN`` or
``\\uNNNN``, so nothing is lost and nothing acts.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

__all__ = ["SafeFormatter", "dumps", "escape_controls", "finite"]

_FORMAT = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_FORMAT}\u2028\u2029]")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with every control or invisible format character written as ``\\xNN`` or
    ``\\uNNNN``; characters in ``keep`` (e.g. ``"\\n\\t"``) are left as they are."""
    if not text:
        return text
    return _CONTROLS.sub(lambda m: m.group() if m.group() in keep else _visible(m.group()), text)


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by None (dicts, lists, tuples)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if type(data).__module__ == "numpy" and hasattr(data, "item"):  # numpy scalars and arrays
        return finite(data.item() if getattr(data, "ndim", 0) == 0 else data.tolist())
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def dumps(data: Any) -> str:
    """One line of strict JSON: non-finite numbers become null, unknown objects their text,
    and characters a terminal could act on (DEL, C1, bidi controls) are ``\\u`` escaped."""
    text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, default=str)
    # Those characters can only occur inside JSON strings, where a \\u escape is equivalent.
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeFormatter(logging.Formatter):
    """A log formatter that escapes control characters (a file name or header value in a log
    line cannot act on the terminal); newlines are kept for tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, escaped."""
        return escape_controls(super().format(record), keep="\n")
