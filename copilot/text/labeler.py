"""A rule-based report labeler in the CheXpert / NegBio tradition.

For a report (or an answer the copilot composed) it says which of the classifier's findings
are stated present, absent (negated: "no effusion", "without pneumothorax") or uncertain
("possible", "cannot exclude"). Mentions are found with per-finding patterns; negation and
uncertainty cues are looked for in the same clause, before the mention (within a few words)
or after it ("... is not seen"). Where several mentions disagree, present beats uncertain
beats absent, as in CheXpert.

Written by hand because the established labelers (CheXpert labeler, NegBio) need Java/NLTK
parsers and are not maintained for current Python; this one is measured against the IU
corpus's MeSH terms in ``bench/labeler.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Status = Literal["present", "absent", "uncertain"]

#: Finding label (the classifier's display label) -> patterns that mention it.
FINDING_PATTERNS: dict[str, tuple[str, ...]] = {
    "Atelectasis": (r"atelecta\w*", r"\bcollapse[ds]?\b"),
    "Cardiomegaly": (
        r"cardiomegaly",
        r"(?:heart|cardiac(?: silhouette| shadow)?) (?:size )?(?:is |are |appears? |remains? )?"
        r"(?:mildly |moderately |severely |markedly |slightly |somewhat )?(?:enlarged|increased)",
        r"enlarge(?:d|ment of the) (?:heart|cardiac)",
        r"(?:cardiac|heart) enlargement",
        r"enlarged cardiac silhouette",
    ),
    "Consolidation": (r"consolidat\w*",),
    "Edema": (r"\bedema\b", r"oedema"),
    "Effusion": (r"effusion",),
    "Emphysema": (r"emphysema\w*",),
    "Fibrosis": (r"fibros[ie]s", r"fibrotic"),
    "Fracture": (r"fractur\w*",),
    "Hernia": (r"hernia\w*",),
    "Infiltration": (r"infiltrat\w*",),
    "Lung lesion": (r"\blesions?\b", r"cavitar\w*", r"cavit(?:y|ies)"),
    "Lung opacity": (r"opacit\w*", r"opacification", r"airspace disease", r"air space disease"),
    "Mass": (r"\bmass(?:es)?\b",),
    "Nodule": (r"nodul\w*",),
    "Pleural thickening": (
        r"pleural thickening",
        r"thickening of the pleura",
        r"pleural[- ]based thickening",
    ),
    "Pneumonia": (r"pneumonia\w*", r"pneumonitis"),
    "Pneumothorax": (r"pneumothora\w*",),
    "Enlarged cardiomediastinum": (
        r"(?:widened|widening of the|enlarged) (?:superior )?(?:mediastin\w*|cardiomediastinal silhouette)",
        r"mediastinal widening",
    ),
}

#: Whole phrases that state a finding absent without a negation word.
NORMAL_PHRASES: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": (
        r"(?:heart|cardiac) (?:size|silhouette)(?: and [a-z ]+)? (?:is |are )?"
        r"(?:within normal limits|normal|unremarkable|stable|upper limits of normal)",
        r"normal (?:heart|cardiac) (?:size|silhouette)",
        r"cardiomediastinal silhouettes? (?:is |are )?(?:within normal limits|normal|unremarkable)",
        r"normal cardiomediastinal (?:silhouette|contours?)",
    ),
    "Enlarged cardiomediastinum": (
        r"(?:cardio)?mediastinal (?:silhouettes?|contours?) (?:is |are )?"
        r"(?:within normal limits|normal|unremarkable)",
        r"normal (?:cardio)?mediastinal (?:silhouette|contours?)",
        r"mediastinum (?:size )?(?:is )?(?:within normal limits|normal)",
    ),
}

NEGATION_BEFORE = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|absent|resolution of|resolved|"
    r"removal of|rather than|never|neither|nor|denies)\b"
)
NEGATION_AFTER = re.compile(
    r"^[^.;]{0,40}?\b(?:is|are|was|were|has|have)?\s*(?:not (?:seen|identified|present|evident|"
    r"visualized|demonstrated|appreciated)|absent|resolved|no longer (?:seen|present|visualized)|"
    r"been excluded|is excluded)\b"
)
UNCERTAIN = re.compile(
    r"\b(?:possible|possibly|may|might|could|cannot (?:be )?exclude\w*|can ?not (?:be )?exclude\w*|"
    r"not (?:be )?excluded|questionable|question of|suspect\w*|suspicious|likely|probabl[ey]|"
    r"concern(?:ing)? for|versus|vs|differential|consider\w*|suggest\w*|borderline|equivocal|"
    r"indeterminate|uncertain|vs\.|or)\b"
)
UNCERTAIN_AFTER = re.compile(
    r"^[^,]{0,25}?\b(?:is|are|may be|might be|could be)?\s*(?:possible|likely|suspected|"
    r"questionable|not excluded|cannot be excluded|can not be excluded|not entirely excluded|"
    r"versus|vs\.?|or)\b"
)
CLAUSE_SPLIT = re.compile(r"[.;:\n]|\bbut\b|\bhowever\b|\balthough\b|\bexcept\b|\bwhich\b")
WINDOW_WORDS = 7

_COMPILED = {k: [re.compile(p) for p in v] for k, v in FINDING_PATTERNS.items()}
_NORMAL = {k: [re.compile(p) for p in v] for k, v in NORMAL_PHRASES.items()}
_RANK = {"absent": 0, "uncertain": 1, "present": 2}


@dataclass(frozen=True)
class Mention:
    """One mention of a finding in a text."""

    label: str
    status: Status
    text: str
    clause: str


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in CLAUSE_SPLIT.split(text.lower()) if c.strip()]


def _status_in_clause(clause: str, start: int, end: int) -> Status:
    before = clause[:start].split()[-WINDOW_WORDS:]
    before_text = " ".join(before)
    after = clause[end:]
    if NEGATION_BEFORE.search(before_text) or NEGATION_AFTER.search(after):
        # "no ... cannot exclude" stays uncertain; "no definite effusion" stays absent.
        if UNCERTAIN.search(before_text) and not re.search(r"\bno\b", before_text):
            return "uncertain"
        return "absent"
    if UNCERTAIN.search(before_text) or UNCERTAIN_AFTER.search(after):
        return "uncertain"
    return "present"


def find_mentions(text: str) -> list[Mention]:
    """Every finding mention in ``text`` with its status."""
    mentions: list[Mention] = []
    for clause in _clauses(text):
        for label, patterns in _NORMAL.items():
            for pattern in patterns:
                m = pattern.search(clause)
                if m:
                    mentions.append(Mention(label, "absent", m.group(0), clause))
        for label, patterns in _COMPILED.items():
            for pattern in patterns:
                for m in pattern.finditer(clause):
                    status = _status_in_clause(clause, m.start(), m.end())
                    mentions.append(Mention(label, status, m.group(0), clause))
    return mentions


def label_text(text: str) -> dict[str, Status]:
    """Finding -> status for every finding the text mentions (present > uncertain > absent)."""
    out: dict[str, Status] = {}
    for mention in find_mentions(text):
        current = out.get(mention.label)
        if current is None or _RANK[mention.status] > _RANK[current]:
            out[mention.label] = mention.status
    return out


#: Lay and abbreviated wordings clinicians and patients use in questions (not in reports).
QUESTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Pneumothorax": (
        r"\bptx\b",
        r"air (?:in|around) the pleural? (?:space|cavity)",
        r"collapsed lung",
        r"air (?:outside|around) the lung",
    ),
    "Effusion": (
        r"fluid (?:around|in|on) the lungs?",
        r"fluid in the (?:pleural|chest)",
        r"\beff\b",
    ),
    "Cardiomegaly": (
        r"(?:big|large|enlarged) heart",
        r"heart (?:is |looks )?(?:big|large|enlarged)",
        r"heart size",
        r"\bcmg\b",
    ),
    "Edema": (r"water on the lungs?", r"fluid overload", r"\bchf\b", r"heart failure"),
    "Pneumonia": (r"\bchest infection\b", r"\bpna\b"),
    "Nodule": (r"\bspot on the lung\b", r"\bcoin lesion\b"),
    "Fracture": (r"broken (?:rib|bone|clavicle)", r"\bfx\b"),
    "Lung opacity": (r"white (?:area|patch|spot)", r"shadow(?:ing)? on the lung"),
}
_QUESTION = {k: [re.compile(p) for p in v] for k, v in QUESTION_SYNONYMS.items()}


def findings_in_question(text: str) -> list[str]:
    """Findings a question asks about, in report or lay wording ("air in the pleural space")."""
    found = [m.label for m in find_mentions(text)]
    lower = text.lower()
    for label, patterns in _QUESTION.items():
        if any(p.search(lower) for p in patterns):
            found.append(label)
    return list(dict.fromkeys(found))


def negation_marked_tokens(text: str) -> list[str]:
    """Word tokens with words inside a negated finding mention prefixed ``no_``.

    Keyword retrieval indexes these, so "pleural effusion" does not match a report saying
    "no pleural effusion" (whose tokens are ``no_pleural no_effusion``).
    """
    tokens: list[str] = []
    for clause in _clauses(text):
        negated_spans: list[tuple[int, int]] = []
        for patterns in _COMPILED.values():
            for pattern in patterns:
                for m in pattern.finditer(clause):
                    if _status_in_clause(clause, m.start(), m.end()) == "absent":
                        # Negate the mention and up to three modifiers before it ("no pleural effusion").
                        start = m.start()
                        prefix = clause[:start].split()[-3:]
                        start -= len(" ".join(prefix)) + (1 if prefix else 0)
                        negated_spans.append((max(0, start), m.end()))
        for word in re.finditer(r"[a-z0-9]+", clause):
            inside = any(a <= word.start() < b for a, b in negated_spans)
            tokens.append(("no_" if inside else "") + word.group(0))
    return tokens
