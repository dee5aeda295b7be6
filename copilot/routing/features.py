"""Cheap features of a question part for the intent model: hashed word and character n-grams
plus the lexicon's flags, L2-normalised. Pure Python and numpy; stable across processes
(CRC-32, not Python's salted ``hash``)."""

from __future__ import annotations

import re
import zlib
from itertools import pairwise

import numpy as np

from copilot.routing.lexicon import Mentions, mentions
from copilot.routing.text import words

__all__ = ["DIM", "feature_names", "featurize"]

#: Hash space (a power of two).
DIM = 1 << 14
CHAR_NGRAMS = (3, 4, 5)
#: Lexicon flags and cues weigh more than any one n-gram (there are few of them).
CUE_WEIGHT = 3.0

#: Word cues, one feature each: evidence for the model, never a decision on their own.
CUES: dict[str, re.Pattern[str]] = {
    "device": re.compile(
        r"\b(?:tubes?|lines?|catheters?|pacemakers?|pacers?|intubat\w*|endotracheal|nasogastric|orogastric|"
        r"drains?|leads?|wires?|clips?|ports?|picc|stents?|devices?|hardware|foreign bod\w*|markers?|valves?|"
        r"sternotomy|tracheostomy|swan|implant\w*|electrodes?|coils?|prosthe\w*|feeding|aicd|icd|"
        r"defibrillator)\b"
    ),
    "technique": re.compile(
        r"\b(?:rotat\w*|inspirat\w*|expirat\w*|expos\w*|penetrat\w*|under-?penetrated|over-?penetrated|"
        r"position\w*|standing|supine|erect|upright|quality|adequate|sufficient|diagnostic|motion|artefact|"
        r"artifact|"
        r"collimat\w*|cut off|included|visuali[sz]ed|displayed|evaluated|seen well|well seen)\b"
    ),
    "report": re.compile(
        r"\b(?:report|draft|impression|summar\w*|dictat\w*|write|preliminary|findings section|"
        r"interpret\w*)\b|"
        r"\b(?:describe|read|interpret) (?:this|the) (?:image|film|study|x-ray|chest|radiograph|scan|exam)\b|"
        r"\bwhat (?:do you|can you) see\b|\bwhat does (?:this|the) (?:image|film|x-ray|study|radiograph) "
        r"show\b"
    ),
    "describe": re.compile(r"\b(?:describe|description|how would you describe|characteri[sz]e)\b"),
    "knowledge": re.compile(
        r"\b(?:caus\w*|why|differential|treat\w*|prevent\w*|symptoms?|function|effect|used for|indicat\w*|"
        r"consistent with|suggest\w*|meant|means?|manage\w*|next|guidelines?|prognos\w*|determine|expect|"
        r"follow[- ]?up|recommend\w*|similar|define|definition|sign|risk|likely|typical\w*|usually|"
        r"explain\w*|"
        r"look like|difference between|significance|tell \w+ from|emergency|urgent|investigat\w*|need a ct|"
        r"get a ct|biopsy|prevalence|incidence|complication\w*)\b"
    ),
    "definition": re.compile(
        r"^(?:what (?:is|are)|define|definition of|meaning of|explain) (?!the\b|this\b|these\b|that\b)"
    ),
    "compare": re.compile(
        r"\b(?:prior|previous|earlier|old film|old study|interval|since|last (?:time|film|study|x-ray)|"
        r"progress\w*|"
        r"worse|worsen\w*|better|improv\w*|resolv\w*|stable|new|change[sd]?|unchanged|before|yesterday|"
        r"last week|baseline)\b"
    ),
    "where": re.compile(
        r"\b(?:where|which|what (?:side|lobe|part|zone|level)|located|location|locali[sz]e)\b"
    ),
    "size": re.compile(
        r"\b(?:size|big|large|larger|bigger|wide|wider|width|ratio|measure\w*|area|areas|volume\w*|enlarg\w*|"
        r"dilat\w*|diameter|half|exceed\w*|small|tiny|huge|massive|cm|mm)\b"
    ),
    "open": re.compile(
        r"^(?:what|which|how|describe|name|identify|please|count|tell)\b|\b(?:colou?r|how many|count|shape|"
        r"borders?|margins?|spiculat\w*|circumscribed|solid|cystic|structure|organs?|represent\w*|dots?)\b"
    ),
    "count": re.compile(
        r"\b(?:how many|number of|count|more than (?:one|\d+)|at least \d+|solitary|multiple)\b|>\s*\d"
    ),
    "header": re.compile(
        r"\b(?:modality|ct|mri|mr|x-ray|radiograph|plain film|ultrasound|plane|view|projection|pa|ap|lateral|"
        r"coronal|sagittal|axial|transverse|orientation|sex|gender|male|female|age|old|series|body part|"
        r"organ system|study of|taken (?:with|via|by))\b"
    ),
    "yesno": re.compile(r"^(?:is|are|was|were|does|do|did|can|could|has|have|any|should|will)\b"),
}


def feature_names(part: str, found: Mentions | None = None) -> list[str]:
    """The named features of a normalised part (before hashing); for tests and inspection."""
    toks = words(part)
    names: list[str] = []
    names += [f"w:{t}" for t in toks]
    names += [f"b:{a}_{b}" for a, b in pairwise(toks)]
    if toks:
        names.append(f"f:{toks[0]}")
        names.append(f"f2:{'_'.join(toks[:2])}")
        names.append(f"l:{toks[-1]}")
    for tok in toks:
        padded = f"<{tok}>"
        if len(tok) < 4:
            continue
        for n in CHAR_NGRAMS:
            names += [f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1)]
    m = found if found is not None else mentions(part)
    flags = {
        "finding": bool(m.findings),
        "sign": bool(m.signs),
        "term": bool(m.terms),
        "named": m.named,
        "unnamed": not m.named,
        "structure": bool(m.structures),
        "overall": m.overall,
        "region": m.region,
        "deictic": m.deictic,
        "pronoun": m.pronoun,
        "short": len(toks) <= 3,
    }
    names += [f"x:{k}" for k, v in flags.items() if v]
    names += [f"q:{name}" for name, pattern in CUES.items() if pattern.search(part)]
    names += [f"s:{s}" for s in m.structures]
    return names


def featurize(part: str, found: Mentions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the hashed, L2-normalised feature vector of a normalised part."""
    counts: dict[int, float] = {}
    for name in feature_names(part, found):
        h = zlib.crc32(name.encode())
        index = h & (DIM - 1)
        sign = 1.0 if (h >> 31) & 1 else -1.0
        weight = CUE_WEIGHT if name[0] in "qx" else 1.0
        counts[index] = counts.get(index, 0.0) + sign * weight
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    val = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    norm = float(np.linalg.norm(val)) or 1.0
    return idx, val / norm
