"""Reassuring wording: what a sentence says is normal, absent or not worth worrying about.

The report labeler (:mod:`copilot.text.labeler`) reads findings stated present, absent or
uncertain. A reassuring answer often names no finding at all ("No acute findings.", "Normal
chest radiograph.", "The study is unremarkable.") or names an organ instead ("The heart is
normal in size.", "Lungs are clear."), or names a finding and waves it away ("cardiomegaly is
unlikely", "probably an artifact"). This module finds those claims, NegEx style, with compact
hand-written rules (negspaCy would need spaCy and a model for the same few cue lists):

- **global** claims: the whole study is normal. ``kind="all"``, or ``kind="other"`` when the
  claim excludes what was said before ("otherwise normal", "no other findings").
- **organ** claims: an organ is normal, which denies the findings of that organ
  (:data:`ORGANS`: heart -> cardiomegaly; lungs -> opacity, consolidation, effusion, ...).
- **denials** the labeler's cue lists miss ("cardiomegaly: none", "rules out cardiomegaly",
  "cardiomegaly was not detected").
- **dismissals**: a finding named with words that discount it ("unlikely", "artifact",
  "not significant", "can be ignored").

Input is compared text: folded (:func:`copilot.text.normalize.fold`), contractions spelled out,
lower case; :func:`reassurances` does that itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from copilot.text.labeler import FINDING_PATTERNS
from copilot.text.normalize import fold

__all__ = ["ORGANS", "Reassurance", "expand_contractions", "prepare", "reassurances"]

#: Organ -> the finding labels (the labeler's) that calling it normal denies.
ORGANS: dict[str, frozenset[str]] = {
    "heart": frozenset({"Cardiomegaly"}),
    "cardiomediastinal silhouette": frozenset({"Cardiomegaly", "Enlarged cardiomediastinum"}),
    "mediastinum": frozenset({"Enlarged cardiomediastinum"}),
    "lungs": frozenset(
        {
            "Lung opacity",
            "Consolidation",
            "Pneumonia",
            "Edema",
            "Infiltration",
            "Atelectasis",
            "Effusion",
            "Pneumothorax",
            "Nodule",
            "Mass",
            "Lung lesion",
        }
    ),
    "pleura": frozenset({"Effusion", "Pneumothorax", "Pleural thickening"}),
    "bones": frozenset({"Fracture"}),
    "diaphragm": frozenset({"Hernia"}),
}
_SUBJECTS = {
    "heart": r"heart(?: size| silhouette| shadow| contours?)?|cardiac(?: size| silhouette| shadow| contours?)"
    r"|cardiothoracic ratio|heart and mediastinum",
    "cardiomediastinal silhouette": r"cardiomediastinal(?: silhouettes?| contours?| structures?)?",
    "mediastinum": r"mediastin\w*(?: silhouette| contours?| width)?|hila|hilar (?:contours?|structures?)",
    "lungs": r"lungs?|lung (?:fields?|zones?|parenchyma|bases|apices|volumes?)|pulmonary (?:parenchyma|"
    r"vasculature|vascularity)|parenchyma|air ?spaces?|chest",
    "pleura": r"pleura\w*(?: spaces?| surfaces?| cavit(?:y|ies))?|costophrenic (?:angles?|recesses|sulci)"
    r"|cp angles?",
    "bones": r"bones?|osseous(?: structures?)?|skeleton|skeletal(?: structures?)?|ribs?|clavicles?"
    r"|bony(?: thorax| structures?)?",
    "diaphragm": r"(?:hemi)?diaphragms?",
}
_ORGAN_RE = {k: re.compile(rf"\b(?:{v})\b") for k, v in _SUBJECTS.items()}
_NORMAL_WORD = (
    r"normal(?:ly)?(?:[- ]sized?| in (?:size|caliber|appearance|contour))?|unremarkable|within normal limits"
    r"|(?:is |are )?not (?:\w+ )?(?:enlarged|widened|abnormal)|clear|intact"
    r"|well[- ](?:expanded|aerated|inflated)"
    r"|fine|ok|okay|healthy|good|negative|reassuring|sharp|unrevealing|clean|no abnormalit\w*|small"
    r"|upper limits? of normal|satisfactory|benign"
)
_NORMAL_RE = re.compile(rf"\b(?:{_NORMAL_WORD})\b")
_NEGATED_NORMAL = re.compile(r"\b(?:not|never|hardly|far from|no longer|isn't|aren't)\s+(?:\w+\s+)?$")
#: The study as a whole.
_STUDY = (
    r"(?:study|exam\w*|films?|radiographs?|x-?rays?|xrays?|cxr|chest(?: film| x-?ray| radiograph)?|images?"
    r"|imaging|scans?|everything|all|findings?|results?|appearances?|picture|overall|it|this|study findings"
    r"|the rest|remainder|rest|report|impression|conclusion|summary|reading|interpretation|assessment)"
)
_GLOBAL_ALL = [
    re.compile(p)
    for p in (
        # "no acute findings", "no evidence of acute cardiopulmonary disease", "no abnormality"
        r"\b(?:no|without|negative for|free of|absence of)\s+(?:[\w-]+\s+){0,5}?"
        r"(?:findings?|abnormalit(?:y|ies)"
        r"|disease|process(?:es)?|patholog\w*|concerns?|issues?|problems?|injur\w*|anomal\w*|changes?"
        r"|abnormal\w*|features?|worries|red flags?|surprises?|emergenc\w*|urgent \w+)\b",
        rf"\b{_STUDY}\s*[:=-]\s*(?:[\w-]+\s+){{0,2}}?(?:normal|unremarkable|negative|clear|fine|healthy"
        rf"|within normal limits|nothing|reassuring|benign)\b",
        r"\bno acute(?=\s*(?:[.!;,)]|$))",
        r"\b(?:otherwise|else)\s+(?:\w+\s+)?(?:normal|unremarkable|negative|clear|fine|ok|okay|healthy"
        r"|within normal limits|clean|good|benign|unrevealing|satisfactory)\b",
        r"\bnothing\s+(?:\w+\s+){0,2}?(?:abnormal|acute|significant|concerning|worrying|worrisome|alarming"
        r"|suspicious|wrong|remarkable|serious|of (?:note|concern|significance)"
        r"|to (?:worry|report|note|see))\b",
        rf"\b(?:normal|unremarkable|negative|clear|clean|healthy|benign|reassuring|unrevealing|satisfactory)"
        rf"\s+(?:[\w-]+\s+){{0,2}}?{_STUDY}\b",
        rf"\b{_STUDY}\s+(?:[\w-]+\s+){{0,4}}?(?:is|are|was|were|looks?|appears?|seems?|remains?|reads?)\s+"
        rf"(?:[\w-]+\s+){{0,2}}?(?:normal|unremarkable|negative|clear|fine|ok|okay|healthy|reassuring"
        rf"|within normal limits|clean|good|benign|unrevealing|satisfactory)\b",
        r"\b(?:all clear|all good|all normal|no worries|no cause for (?:concern|alarm)|no need (?:for|to)"
        r" (?:concern|worry|alarm|follow)|nothing to worry|clean bill of health|good news|reassur\w*"
        r")\b",
    )
]
_OTHER = re.compile(
    r"\b(?:otherwise|other|others|further|additional|remaining|remainder|rest|else|apart from|aside from"
    r"|besides|other than|except)\b"
)
#: A whole sentence that is only a reassuring word ("Normal.", "Unremarkable!", "No.").
_BARE = re.compile(
    rf"^\W*(?:(?:entirely|completely|essentially|totally|quite)\s+)?(?:{_NORMAL_WORD}|no|none|nil|absent)\W*$"
)
#: A reassuring word in a sentence that names no organ and no finding ("Looks normal to me.").
_LOOSE = re.compile(
    r"\b(?:normal|unremarkable|within normal limits|negative|healthy|reassuring|benign"
    r"|(?:is|are|looks?|seems?|appears?) (?:\w+ )?(?:fine|ok|okay|good|clear))\b"
)
_MENTIONS = {k: [re.compile(p) for p in v] for k, v in FINDING_PATTERNS.items()}
_DENY_AFTER = re.compile(
    r"^(?:[\s:?!=-]*(?:no|none|negative|absent|nil|not present|not seen|ruled out|excluded)\b"
    r"|(?:[^,;.]|\.\d){0,50}?\b(?:not (?:\w+ )?(?:found|detected|noted|observed|shown|visible|apparent"
    r"|flagged|identified|seen|present|there|evident|confirmed|supported|suggested|demonstrated|appreciated)"
    r"|ruled out|excluded|resolved|gone|negative|not above|(?:below|under) (?:its |the |their )?(?:[\d.]+ )?"
    r"(?:operating )?threshold)\b)"
)
_DENY_BEFORE = re.compile(
    r"\b(?:rule[sd]? out|ruling out|excludes?|excluding|lack of|lacks|no signs? of|nothing to suggest"
    r"|not (?:\w+ ){0,2}?(?:show|shows|showing|demonstrate|demonstrates|reveal|reveals|suggest|suggests"
    r"|see|find|flag|flags|detect|detects|have|has|indicate|indicates|support|supports)|free from)\b"
    r"(?:\s+[\w-]+){0,4}\s*$"
)
_CANNOT = re.compile(
    r"\b(?:cannot|can not|could not|unable to|not be able to|difficult to|hard to)\s+(?:be\s+)?$"
)
_DISMISS = re.compile(
    r"\b(?:artifact\w*|artefact\w*|false[- ]positives?|spurious\w*|insignificant"
    r"|not (?:clinically |really |very |particularly |likely |necessarily )?"
    r"(?:significant|relevant|important|concerning|worrying|worrisome|real"
    r"|true|meaningful|reliable|accurate|valid|correct|a concern|an issue|a problem|likely)|no (?:clinical )?"
    r"(?:significance|relevance|concern)|(?:can|may|should|could) (?:be )?(?:safely )?(?:ignored|disregarded"
    r"|dismissed|discounted)|disregard\w*|ignor\w*|nothing to worry|not to worry|of no (?:concern|consequence"
    r"|significance)|unlikely|doubtful|improbable|normal variant|overcall\w*|over-?called|noise|erroneous"
    r"|mistaken\w*|incorrect\w*|wrong\w*|unreliable|not to be trusted|not worry)\b"
)
_CLAUSES = re.compile(r"[;\n]|,\s*(?:and\s+|but\s+)?|\bbut\b|\bhowever\b|\balthough\b|\bwhile\b|\bwhereas\b")
_CONTRACTIONS = [
    (re.compile(r"\bcan['’]t\b", re.I), "cannot"),
    (re.compile(r"\bwon['’]t\b", re.I), "will not"),
    (re.compile(r"\b(\w+)n['’]t\b", re.I), r"\1 not"),
    (re.compile(r"\b(there|it|that|what|heart|lung|everything)['’]s\b", re.I), r"\1 is"),
]


@dataclass
class Reassurance:
    """The reassuring claims of one sentence; each claim keeps the words that made it."""

    #: "all": the whole study is called normal; "other": all but what was already said.
    global_kind: Literal["all", "other"] | None = None
    global_words: str = ""
    #: (words, finding labels the organ claim denies), e.g. ("heart normal in size", {"Cardiomegaly"}).
    organs: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    #: Finding label (the labeler's) -> words that deny it ("cardiomegaly: none").
    denied: dict[str, str] = field(default_factory=dict)
    #: Finding label -> words that discount it ("cardiomegaly ... artifact").
    dismissed: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.global_kind or self.organs or self.denied or self.dismissed)


def expand_contractions(text: str) -> str:
    """``text`` with English contractions spelled out ("isn't" -> "is not"), so negation
    cues read them."""
    text = text.replace("’", "'")
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def prepare(text: str) -> str:
    """``text`` as the rules read it: folded, contractions spelled out, lower case."""
    return expand_contractions(fold(text).lower())


_TECHNIQUE = re.compile(
    r"\b(?:quality|exposure|position\w*|technique|inspiration|rotation|penetration|diagnostic|resolution|view)\b"
)


def _names_anything(sentence: str) -> bool:
    """Whether ``sentence`` names an organ or a finding (then a normal word is about that)."""
    return (
        any(p.search(sentence) for p in _ORGAN_RE.values() if p is not _ORGAN_RE["lungs"])
        or any(p.search(sentence) for patterns in _MENTIONS.values() for p in patterns)
        or bool(re.search(r"\b(?:lungs?|pleura\w*|parenchyma)\b", sentence))
    )


def _global(sentence: str, out: Reassurance) -> None:
    hits = [m for p in _GLOBAL_ALL for m in p.finditer(sentence)]
    hits = [m for m in hits if not _NEGATED_NORMAL.search(sentence[: m.start()])]
    hits = [m for m in hits if not re.search(r"\b(?:not|never|hardly)\b", m.group(0))]
    if not hits and _BARE.match(sentence):
        hits = [m for m in [re.search(r"\w[\w -]*\w|\w", sentence)] if m]
    if _TECHNIQUE.search(sentence):
        hits = [m for m in hits if not re.search(r"\b(?:fine|ok|okay|good|clear|satisfactory)\b", m.group(0))]
    if not hits and not _names_anything(sentence) and not _TECHNIQUE.search(sentence):
        hits = [m for m in _LOOSE.finditer(sentence) if not _NEGATED_NORMAL.search(sentence[: m.start()])]
    if not hits:
        return
    bare_no = bool(re.match(r"^\W*(?:no|none|nil|absent)\W*$", sentence))  # "No." answers a question
    other = bare_no or any(_OTHER.search(sentence[max(0, m.start() - 40) : m.end()]) for m in hits)
    out.global_kind = "other" if other else "all"
    out.global_words = hits[0].group(0).strip()


_JOINED = re.compile(r"^\s*(?:,|and|&|/|,\s*and)\s*(?:the\s+)?$")


def _organs(clause: str, out: Reassurance) -> None:
    """Organs called normal: each normal word belongs to the nearest organ before it (and
    the organs joined to that one: "heart and lungs are normal"), else the one just after it."""
    normal = [m for m in _NORMAL_RE.finditer(clause) if not _NEGATED_NORMAL.search(clause[: m.start()])]
    if not normal:
        return
    subjects = sorted(
        (
            (m.start(), m.end(), organ, m.group(0))
            for organ, p in _ORGAN_RE.items()
            for m in p.finditer(clause)
        ),
    )
    for word in normal:
        before = [s for s in subjects if s[1] <= word.start() and word.start() - s[1] <= 50]
        chosen = []
        if before:
            k = subjects.index(before[-1])
            chosen.append(subjects[k])
            while k > 0 and _JOINED.match(clause[subjects[k - 1][1] : subjects[k][0]]):
                k -= 1
                chosen.append(subjects[k])
        else:
            after = [s for s in subjects if s[0] >= word.end() and s[0] - word.end() <= 25]
            chosen = after[:1]
        for start, end, organ, subject in chosen:
            if organ == "lungs" and subject == "chest" and word.group(0) != "clear":
                continue  # "normal chest radiograph" is a global claim, not the lungs
            words = clause[min(start, word.start()) : max(end, word.end())]
            out.organs.append((words, ORGANS[organ]))


def _mentions(clause: str, out: Reassurance) -> set[str]:
    """Denials in ``clause``; returns the labels it mentions without denying them."""
    named: set[str] = set()
    for label, patterns in _MENTIONS.items():
        for pattern in patterns:
            for m in pattern.finditer(clause):
                before, after = clause[: m.start()], clause[m.end() :]
                deny_before = _DENY_BEFORE.search(before)
                deny_after = _DENY_AFTER.search(after)
                if deny_before and not _CANNOT.search(before[: deny_before.start()]):
                    out.denied.setdefault(label, f"{deny_before.group(0).strip()} {m.group(0)}")
                elif deny_after and not re.search(
                    r"\b(?:cannot|can not|could not|not be|unable)\b", deny_after.group(0)
                ):
                    out.denied.setdefault(label, f"{m.group(0)} {deny_after.group(0).strip()}")
                else:
                    named.add(label)
    return named


def reassurances(sentence: str) -> Reassurance:
    """The reassuring claims of ``sentence`` (see the module docstring)."""
    text = prepare(sentence)
    out = Reassurance()
    _global(text, out)
    named: set[str] = set()
    for clause in _CLAUSES.split(text):
        clause = clause.strip()
        if clause:
            _organs(clause, out)
            named |= _mentions(clause, out)
    dismissal = _DISMISS.search(text)
    if dismissal:
        for label in sorted(named - set(out.denied)):
            out.dismissed[label] = f"{label.lower()} ... {dismissal.group(0)}"
    return out
