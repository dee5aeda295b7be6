"""Question text as the router reads it: normalised, abbreviations spelled out, split into parts.

Clinicians type "?ptx", "r/o pna", "ETT position?", "L effusion". The router lower-cases the
text, spells out the abbreviations below, keeps side letters ("L", "R") as words, and splits a
multi-part question ("is there X, and what could cause it?") into parts that are routed one by
one.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "normalise", "split_parts", "words"]

#: Abbreviations and shorthand -> words (applied to lower-cased text, word-bounded).
ABBREVIATIONS: dict[str, str] = {
    "r/o": "rule out",
    "ptx": "pneumothorax",
    "pnx": "pneumothorax",
    "htx": "haemothorax",
    "cmg": "cardiomegaly",
    "ctr": "cardiothoracic ratio",
    "eff": "effusion",
    "effs": "effusions",
    "pna": "pneumonia",
    "ddx": "differential diagnosis",
    "dx": "diagnosis",
    "tx": "treatment",
    "cxr": "chest x-ray",
    "cxrs": "chest x-rays",
    "xr": "x-ray",
    "xray": "x-ray",
    "ett": "endotracheal tube",
    "et tube": "endotracheal tube",
    "ngt": "nasogastric tube",
    "ng tube": "nasogastric tube",
    "ogt": "orogastric tube",
    "cvc": "central venous catheter",
    "cvl": "central venous line",
    "picc": "picc line",
    "ij": "internal jugular",
    "fx": "fracture",
    "fxs": "fractures",
    "chf": "congestive heart failure",
    "copd": "copd emphysema",
    "ild": "interstitial lung disease",
    "rul": "right upper lobe",
    "rml": "right middle lobe",
    "rll": "right lower lobe",
    "lul": "left upper lobe",
    "lll": "left lower lobe",
    "ruz": "right upper zone",
    "luz": "left upper zone",
    "rlz": "right lower zone",
    "llz": "left lower zone",
    "cp": "costophrenic",
    "pa": "pa",
    "ap": "ap",
    "b/l": "bilateral",
    "bilat": "bilateral",
    "pulm": "pulmonary",
    "subcut": "subcutaneous",
    "sx": "symptoms",
    "hx": "history",
    "f/u": "follow up",
    "y/n": "yes or no",
    "w/": "with",
    "w/o": "without",
    "abn": "abnormal",
    "abnl": "abnormal",
    "nml": "normal",
    "prelim": "preliminary",
    "whats": "what is",
    "what's": "what is",
    "where's": "where is",
    "how's": "how is",
    "is/are": "is",
    "near/in": "in",
}

#: Frequent misspellings in real questions -> the word.
TYPOS: dict[str, str] = {
    "pnemothorax": "pneumothorax",
    "pneumothroax": "pneumothorax",
    "pneumonthorax": "pneumothorax",
    "pneuomothorax": "pneumothorax",
    "pneumothorx": "pneumothorax",
    "pnuemothorax": "pneumothorax",
    "pnuemonia": "pneumonia",
    "pneumoina": "pneumonia",
    "effussion": "effusion",
    "efusion": "effusion",
    "cardiomegally": "cardiomegaly",
    "cardiomeagly": "cardiomegaly",
    "atelectesis": "atelectasis",
    "atelectisis": "atelectasis",
    "consolodation": "consolidation",
    "mediastium": "mediastinum",
    "hylar": "hilar",
    "hemodiaphragm": "hemidiaphragm",
    "subdiaphram": "subdiaphragm",
    "opacificaions": "opacifications",
    "symmtery": "symmetry",
    "int his": "in this",
    "doe this": "does this",
    "xry": "x-ray",
}

_ABBREV = re.compile(
    r"(?<![\w/])("
    + "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True))
    + r")(?![\w/])"
)
_TYPO = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(TYPOS, key=len, reverse=True)) + r")\b")
_SIDE = re.compile(
    r"(?<![\w'])([lr])(?=\s+(?:lung|lobe|side|base|apex|hilum|hemithorax|chest|effusion|\w*pneumo))"
)
_PART = re.compile(
    r"\?+\s*|;\s*|\.\s+(?=[a-z])|,?\s+\b(?:and|also|then)\s+(?=(?:what|why|how|is|are|where|which|could|can|"
    r"should|draft|write|describe|summari[sz]e|compare|any)\b)|,\s+(?=(?:what|why|how|where|which|draft|write|"
    r"describe|summari[sz]e|compare|is it|are they)\b)"
)
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def normalise(text: str) -> str:
    """Lower-case ``text``, fix frequent typos and spell out abbreviations ("?ptx" -> "? pneumothorax")."""
    out = " ".join(text.lower().replace("\u2019", "'").split())
    out = re.sub(r"^\?+\s*", "", out)  # "?ptx" is a question mark before the word, not a part
    out = re.sub(r"[?\s]*-\s*(?:yes/no|open|closed)\b", "?", out)  # answer-type tags some sets append
    out = re.sub(r"\b(vs|e\.g|i\.e|etc)\.", lambda m: {"vs": "versus"}.get(m.group(1), m.group(1)), out)
    out = _TYPO.sub(lambda m: TYPOS[m.group(1)], out)
    out = _SIDE.sub(lambda m: "left" if m.group(1) == "l" else "right", out)
    out = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1)], out)
    return out


def split_parts(text: str) -> list[str]:
    """The parts of a normalised multi-part question; the whole text when it has one part."""
    parts = [p.strip(" ,.!") for p in _PART.split(text)]
    kept = [p for p in parts if len(p) > 1]
    return kept or [text.strip()]


def words(text: str) -> list[str]:
    """Word tokens of a normalised text (hyphenated and apostrophe words kept whole)."""
    return _WORD.findall(text)
