"""Where a study's person names appear in typed text, in the forms people type them.

Built from the DICOM person names of a study (``QUIXOTE^ZEBEDIAH``: family name, given names;
the patient's, other names, physicians'), :class:`PersonNames` finds in a text:

1. every part of those names, in any case ("Quixote", "ZEBEDIAH");
2. short forms of a given name: the nickname tables' (William -> Bill, Liam) and the rules'
   (a prefix of three letters or more, "Zeb"; with a diminutive ending, "Zebby"), see
   :mod:`copilot.text.nicknames`;
3. a token next to a name found so (whitespace or a comma between): a capitalised word that
   is not a clinical or function word ("Ottoline Quixote"), an initial ("Q.", "Z"), or a short
   form of the given name that is also a word ("Will Quixote"); up to two tokens each side.

A short form that is also an English word ("Will", "Bill", "Pat", "Rob") is a name only in
title case (not all capitals) and not the first word of a sentence ("Will the effusion
resolve?" is kept), or next to another part of the name ("Will Quixote", "Quixote, Will").
A short form that is a radiology word (:data:`copilot.text.radiology_words.RADIOLOGY_WORDS`:
"Mass" of MASSIMO, "Bron" of BRONWEN) is a name only next to another part of the name ("Mass
Rossi"): "Is there a Mass in the right lung?" is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from copilot.text.deid import NEVER_NAMES
from copilot.text.names import AMBIGUOUS
from copilot.text.nicknames import is_short_form, nickname_forms
from copilot.text.radiology_words import RADIOLOGY_WORDS

__all__ = ["TITLES", "PersonNames"]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*")
#: What may stand between two tokens of one name.
_NAME_GAP = re.compile(r"[ \t]*,?[ \t]+|[ \t]*,")
#: Titles kept before a name ("Mr [REDACTED]").
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev"})
#: Abbreviations of report language that are never part of a name ("QUIXOTE PA film").
ABBREVIATIONS = frozenset({"pa", "ap", "lat", "ct", "mr", "mri", "dx", "cr", "us", "xr", "cxr", "icu", "ed"})
#: Most tokens added on each side of a name by adjacency.
ADJACENT_TOKENS = 2


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    word: str

    @property
    def low(self) -> str:
        return self.word.lower()

    @property
    def cap(self) -> bool:
        return self.word[:1].isupper()


def _bare(word: str) -> str:
    word = word.replace("’", "'")
    if word.lower().endswith("'s"):
        word = word[:-2]
    return word.strip("'-")


def _is_word(low: str) -> bool:
    """A name form that is also an English or clinical word ("will", "bill", "mark")."""
    return low in NEVER_NAMES or low in AMBIGUOUS


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t")
    return not before or before[-1] in ".!?:;\n>\"'(["


class PersonNames:
    """The person names of a study, to find in text (see the module docstring)."""

    def __init__(self, names: Iterable[str]) -> None:
        parts: set[str] = set()
        given: set[str] = set()
        for name in names:
            components = name.split("^")
            for i, component in enumerate(components[:3]):
                words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", component)]
                parts.update(w for w in words if len(w) >= 2)
                if i >= 1:  # given and middle names
                    given.update(w for w in words if len(w) >= 3)
        self.parts = frozenset(parts)
        self.given = frozenset(given)
        self.nicknames = frozenset(n for g in given for n in nickname_forms(g)) - self.parts

    def __bool__(self) -> bool:
        return bool(self.parts)

    def _short_form(self, low: str) -> bool:
        return low in self.nicknames or any(is_short_form(low, g) for g in self.given)

    def _core(self, text: str, tok: _Tok) -> bool:
        """A name part anywhere, a short form where it cannot be a word (see the docstring)."""
        low = tok.low
        if low in self.parts:
            return True
        if not self._short_form(low) or low in RADIOLOGY_WORDS:
            return False  # a radiology word is a name only next to one (see the docstring)
        if not _is_word(low):
            return tok.cap or low in self.nicknames
        # A word ("Will"): in title case, not opening a sentence (all-caps text capitalises all).
        title = tok.cap and not tok.word.isupper()
        return title and not _sentence_start(text, tok.start)

    def _adjacent(self, tok: _Tok) -> bool:
        """Whether a token next to a name is part of it."""
        low = tok.low
        if low in TITLES or low in ABBREVIATIONS:
            return False
        if len(tok.word) == 1:
            return tok.word.isupper()  # an initial
        if self._short_form(low) or low in self.parts:
            return True
        return tok.cap and low not in NEVER_NAMES

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each name in ``text``, merged, initials with their dot."""
        if not self.parts:
            return []
        toks = [
            _Tok(m.start(), m.start() + len(_bare(m.group(0))), _bare(m.group(0)))
            for m in _TOKEN.finditer(text)
            if _bare(m.group(0))
        ]
        hit = [self._core(text, t) for t in toks]
        core = [i for i, h in enumerate(hit) if h]
        for i in core:
            for step in (-1, 1):
                j = i
                for _ in range(ADJACENT_TOKENS):
                    k = j + step
                    if not 0 <= k < len(toks):
                        break
                    left, right = (toks[k], toks[j]) if step < 0 else (toks[j], toks[k])
                    gap = text[left.end : right.start]
                    if not _NAME_GAP.fullmatch(gap.replace(".", "", 1) if len(left.word) == 1 else gap):
                        break
                    if not (hit[k] or self._adjacent(toks[k])):
                        break
                    hit[k] = True
                    j = k
        spans = []
        for t, h in zip(toks, hit, strict=True):
            if h:
                dot = len(t.word) == 1 and text[t.end : t.end + 1] == "."
                spans.append((t.start, t.end + 1 if dot else t.end))
        return spans
