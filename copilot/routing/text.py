"""Question text as the router reads it: normalised, abbreviations spelled out, split into parts.

Clinicians type "?ptx", "r/o pna", "ETT position?", "L effusion". The router lower-cases the
text, spells out the abbreviations below, keeps side letters ("L", "R") as words, and splits a
multi-part question ("is there X, and what could cause it?") into parts that are routed one by
one. British spellings read as American ones ("oesophagus", "haemorrhage", "oedema"), and a
clause that only says the question is about the image ("based on the chest X-ray", "on this
film"), wherever it stands, is taken out by :func:`unframe` and remembered as a flag: word
order does not decide whether the image is read.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "SPELLINGS", "normalise", "prepare", "split_parts", "unframe", "words"]

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
    # chat shorthand ("what do u see", "can u draft a report pls")
    "u": "you",
    "ur": "your",
    "pls": "please",
    "plz": "please",
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

#: British spellings -> American (word beginnings; applied before the typos and abbreviations).
SPELLINGS: dict[str, str] = {
    "oesophag": "esophag",
    "haem": "hem",
    "oedem": "edem",
    "anaem": "anem",
    "ischaem": "ischem",
    "paediatr": "pediatr",
    "anaesth": "anesth",
    "foetal": "fetal",
    "tumour": "tumor",
    "colour": "color",
    "centre": "center",
    "fibre": "fiber",
    "oestrogen": "estrogen",
    "leukaem": "leukem",
    "orthopaed": "orthoped",
}

_SPELL = re.compile(r"\b(" + "|".join(sorted(SPELLINGS, key=len, reverse=True)) + r")")
_XRAY = re.compile(r"\bx[ -]?rays?\b|\bxrays?\b")
_IMAGE = (
    r"(?:the|this|these|that|those|your|my|our)\s+(?:(?:chest|frontal|pa|ap|lateral|plain|provided|"
    r"attached|given|current|patient'?s?)\s+)*(?:x-rays?|images?|films?|radiographs?|pictures?|scans?|"
    r"study|studies|exam|examination|cxr)\b(?:\s+(?:images?|films?|findings))?"
)
#: A clause saying only that the question is about the image ("based on the chest x-ray"),
#: anywhere in the question; or "in this image," opening it.
_FRAME = re.compile(
    r",?\s*\b(?:based (?:up)?on|on the basis of|according to|judging (?:by|from)|looking at|given|"
    r"considering|as seen (?:on|in)|as shown (?:on|in)|as per)\s+" + _IMAGE + r"\s*,?"
    r"|^(?:in|on|from|within)\s+" + _IMAGE + r"\s*,\s*"
)
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
    out = _SPELL.sub(lambda m: SPELLINGS[m.group(1)], out)
    out = _XRAY.sub(lambda m: "x-rays" if m.group(0).endswith("s") else "x-ray", out)
    out = _TYPO.sub(lambda m: TYPOS[m.group(1)], out)
    out = _SIDE.sub(lambda m: "left" if m.group(1) == "l" else "right", out)
    out = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1)], out)
    return out


def unframe(text: str) -> tuple[str, bool]:
    """A normalised question without its image-framing clause ("based on the chest x-ray
    images", "on this film"), and whether it had one: "Based on the image, what is the
    diagnosis?" and "What is the diagnosis based on the image?" read alike."""
    out, n = _FRAME.subn(" ", text)
    if not n:
        return text, False
    out = " ".join(out.split()).strip(" ,")
    out = re.sub(r"\s+([?.!,])", r"\1", out)
    return (out, True) if len(out) > 2 else (text, False)


def prepare(question: str) -> tuple[str, bool]:
    """A raw question as the router reads it: normalised, typos in clinical words corrected
    (:mod:`copilot.routing.spelling`) and the image-framing clause taken out (with the flag
    saying it was there). Training and routing read questions through this one function."""
    from copilot.routing.spelling import correct

    return unframe(correct(normalise(question)))


def split_parts(text: str) -> list[str]:
    """The parts of a normalised multi-part question; the whole text when it has one part."""
    parts = [p.strip(" ,.!") for p in _PART.split(text)]
    kept = [p for p in parts if len(p) > 1]
    return kept or [text.strip()]


def words(text: str) -> list[str]:
    """Word tokens of a normalised text (hyphenated and apostrophe words kept whole)."""
    return _WORD.findall(text)
