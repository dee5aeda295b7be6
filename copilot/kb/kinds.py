"""What kind of answer a knowledge question asks for, and whether a sentence gives it.

Kinds: ``cause`` ("what causes...", "why"), ``differential`` ("what else could it be"),
``next`` (the next step, management, a guideline's recommendation), ``appearance`` ("what
does it look like") and ``definition`` ("what is..."). The shipped knowledge cards label their
sentences the same way ("Common causes:", "Differential:", "Next:", "Appearance:"), and
ordinary prose is matched by its verbs ("results from", "recommends").
"""

from __future__ import annotations

import re

__all__ = ["KINDS", "KIND_WORDS", "answered_kinds", "asked_kinds"]

#: Words that ask for a kind of answer rather than name a topic ("what causes", "next step").
KIND_WORDS = (
    "cause causes causing reason reasons differential next recommend recommends recommended "
    "recommendation recommendations guideline guidelines manage managed management follow-up "
    "followup treat treatment appearance appear appears look looks sign signs feature features "
    "mimic mimics done"
)

#: kind: (a question asking for it, a sentence giving it)
KINDS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "cause": (
        re.compile(
            r"\b(causes?|caused|causing|why|etiolog\w*|aetiolog\w*|due to|reasons?|risk factors?)\b", re.I
        ),
        re.compile(r"\b(causes?|caused by|due to|results? from|risk factors?)\b", re.I),
    ),
    "differential": (
        re.compile(r"\b(differential|ddx|what else|could (it|this) be|mimic\w*)\b", re.I),
        re.compile(r"\b(differential|causes?|includes?)\b", re.I),
    ),
    "next": (
        re.compile(
            r"\b(recommend\w*|guidelines?|next|manage\w*|management|follow[- ]?up|should|treat\w*|"
            r"work[- ]?up|what to do)\b",
            re.I,
        ),
        re.compile(
            r"\b(recommend\w*|guidelines?|next|follow[- ]?up|CT at|managed|treat\w*|warrants?)\b", re.I
        ),
    ),
    "appearance": (
        re.compile(r"\b(looks? like|appear\w*|signs?|features?|recogni[sz]e|spot)\b", re.I),
        re.compile(r"\b(appear\w*|signs?|features?)\b", re.I),
    ),
    "definition": (
        re.compile(
            r"^\s*(what\s+(is|are)\s+(an?\s+)?\w+\s*\??\s*$|define|definition|meaning of|explain)", re.I
        ),
        re.compile(r".", re.I),  # any sentence can define; synthesis keeps it to a passage's opening
    ),
}


def asked_kinds(question: str) -> list[str]:
    """The kinds of answer ``question`` asks for, in :data:`KINDS` order."""
    return [kind for kind, (asks, _) in KINDS.items() if asks.search(question)]


def answered_kinds(sentence: str, kinds: list[str]) -> list[str]:
    """Those of ``kinds`` that ``sentence`` gives (``definition`` excepted: a matter of place)."""
    return [k for k in kinds if k != "definition" and KINDS[k][1].search(sentence)]
