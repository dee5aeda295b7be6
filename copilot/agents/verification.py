"""Checking an LLM-written answer, sentence by sentence, against the tools' structured results.

An LLM composer may be wrong or may obey text it was shown (a header value, a knowledge
passage). So every sentence of its answer is checked, wherever it stands: headings, list
items, ``>`` quotes and quoted text are sentences too. Abbreviations and lay wordings are
spelled out first ("PTX", "collapsed lung" -> pneumothorax). A sentence is **unsupported**
when it:

1. cites a tool (``[name]`` or ``[name: 0.97]``) that did not run or did not succeed, or a
   number that tool did not output;
2. states a finding present or absent that no successful tool's finding (or text) says, or
   contradicts one (present but scored below its threshold, absent but flagged), whatever the
   tool; uncertain wording ("possible", "cannot exclude") is not checked;
3. gives a measurement (a number with a unit) that no tool measured;
4. gives management orders ("insert a chest tube now"): no expert tool outputs those.

Sentences that only describe background knowledge and cite a retrieved passage (``[2]``)
without pointing at this patient, and sentences saying what could not be checked, are not
claims about the patient. Unsupported sentences are removed and listed under
**Verification** (by finding and reason, without repeating them); when nothing supported is
left, the template answer (written from the same results) is given instead. Evidence is read
from :class:`~copilot.tools.contract.ToolResult` findings and texts only, never tool names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from copilot.text.labeler import Status, label_text
from copilot.tools.contract import ToolResult

__all__ = ["NOT_VERIFIED", "Checked", "check_answer", "check_llm_answer", "gives_orders"]

log = logging.getLogger(__name__)

NOT_VERIFIED = (
    "_Not verified: the statements above could not be checked against the expert outputs "
    "({reason}); treat each one as unchecked._"
)

#: Abbreviations spelled out before labelling (word-bounded, any case).
ABBREVIATIONS = {
    "ptx": "pneumothorax",
    "pntx": "pneumothorax",
    "htx": "hemothorax",
    "cmg": "cardiomegaly",
    "eff": "effusion",
    "effs": "effusions",
    "pna": "pneumonia",
    "ggo": "ground glass opacity",
    "ctr": "cardiothoracic ratio",
    "fx": "fracture",
    "fxs": "fractures",
    "atx": "atelectasis",
    "consol": "consolidation",
    "r/o": "rule out",
    "w/o": "without",
    "s/p": "status post",
    "b/l": "bilateral",
    "neg": "negative for",
}
_ABBREV = re.compile(r"(?<![\w/])(" + "|".join(re.escape(k) for k in ABBREVIATIONS) + r")(?![\w/])", re.I)
#: Lay wordings -> the report word the labeler knows.
_LAY = [
    (re.compile(p, re.I), word)
    for p, word in (
        (r"\bcollapsed lung\b", "pneumothorax"),
        (r"\bair (?:in|around|outside) the (?:pleural (?:space|cavity)|lungs?)\b", "pneumothorax"),
        (r"\bfluid (?:around|in|on) the lungs?\b", "effusion"),
        (r"\bfluid in the (?:pleural space|chest)\b", "effusion"),
        (r"\bwater on the lungs?\b", "edema"),
        (r"\b(?:big|large|enlarged) heart\b", "cardiomegaly"),
        (r"\bbroken (?:rib|bone|clavicle)s?\b", "fracture"),
        (r"\bchest infection\b", "pneumonia"),
        (r"\bspot on the lungs?\b", "nodule"),
    )
]
_TAG = re.compile(r"\[([a-z][a-z0-9_]{1,48})(?::\s*([-+]?\d+(?:\.\d+)?)[^\]]*)?\]")
_CITE = re.compile(r"\[(\d{1,3})\]")
_MEASURE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(cm2|cm²|mm2|mm²|cm\^2|mm\^2|cm|mm|ml|%|percent)(?!\w)", re.I
)
_RATIO = re.compile(r"\bratio\b[^.;]{0,40}?(?<![\w.])(0?\.\d+|1\.\d+)\b", re.I)
_LIMITATION = re.compile(
    r"could not be (?:checked|assessed|evaluated|determined)|cannot be (?:checked|assessed)|"
    r"\bwas (?:unavailable|not run|skipped)\b|\bunavailable\b|did not run|\bnot available\b|"
    r"no expert output|not checked|could not run|failed \(|no tool",
    re.I,
)
#: Words that point a sentence at this patient (a cited passage cannot launder such a claim).
_PATIENT = re.compile(
    r"\b(?:this|the|our) (?:patient|study|image|film|radiograph|x-ray|scan|exam)\b|\bhere\b|"
    r"\b(?:he|she) has\b",
    re.I,
)
_PATIENT_WEAK = re.compile(
    r"\bthere (?:is|are)\b|\bis (?:seen|present|visible|noted|shown)\b|\bshows?\b", re.I
)
_IMPERATIVE = re.compile(
    r"^(?:please\s+)?(?:insert|place|start|begin|give|administer|order|perform|call|transfer|"
    r"discharge|intubate|drain|treat|prescribe|stop|remove|schedule|admit|consult|refer|"
    r"aspirate|decompress|initiate|arrange|send|book|obtain)\b",
    re.I,
)
_MANAGEMENT = (
    r"\b(?:insert\w*|placement|place|start\w*|chest tube|drain\w*|intubat\w*|antibiotic\w*|"
    r"decompress\w*|thoracostomy|surgery|surgical|admi(?:t|ssion)\w*|discharg\w*|transfus\w*|"
    r"anticoagula\w*|needle|oxygen|ventilat\w*|treat\w*)"
)
_ORDER = re.compile(
    rf"\b(?:should|must|needs? to|need to|has to|have to|recommend\w*|advis\w*|requires?)\b[^.]{{0,60}}"
    rf"{_MANAGEMENT}|\b(?:immediately|right away|urgently|urgent|at once|now|asap|stat)\b[^.]{{0,60}}"
    rf"{_MANAGEMENT}|{_MANAGEMENT}[^.]{{0,60}}\b(?:immediately|right away|urgently|at once|now|asap|stat)\b",
    re.I,
)
_ABBREV_DOTS = re.compile(r"\b(?:e\.g|i\.e|vs|etc|approx|dr|mr|mrs|ms|fig|no|cf|incl|resp|st)\.$", re.I)


@dataclass
class Checked:
    """The answer after checking: what was removed and why."""

    answer: str
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    removed: int = 0
    replaced: bool = False


@dataclass
class _Evidence:
    status: dict[str, str] = field(default_factory=dict)
    #: finding label (lower case) -> [(tool, present?, score, threshold)]
    findings: dict[str, list[tuple[str, bool | None, float | None, float | None]]] = field(
        default_factory=dict
    )
    numbers: dict[str, list[float]] = field(default_factory=dict)
    measures: list[float] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)
    citing: set[str] = field(default_factory=set)
    extra_labels: set[str] = field(default_factory=set)


def _normalise(text: str) -> str:
    text = text.replace("“", '"').replace("”", '"').replace("’", "'")
    text = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    for pattern, word in _LAY:
        text = pattern.sub(word, text)
    return text


def _labels_of(text: str) -> dict[str, Status]:
    return {k.lower(): v for k, v in label_text(_normalise(text)).items()}


def _evidence(results: Mapping[str, ToolResult]) -> _Evidence:
    ev = _Evidence()
    for name, res in results.items():
        ev.status[name] = res.status
        if not res.ok:
            continue
        numbers = ev.numbers.setdefault(name, [])
        for f in res.findings:
            for value in (f.score, f.value, f.threshold):
                if value is not None:
                    numbers.append(float(value))
            if f.value is not None and f.kind == "measurement":
                ev.measures.append(float(f.value))
            present: bool | None
            if f.above_threshold is not None:
                present = f.above_threshold
            elif f.kind in ("finding", "answer") and f.score is None:
                present = True
            else:
                present = None
            keys = set(_labels_of(f.label)) or {f.label.lower()}
            if not _labels_of(f.label):
                ev.extra_labels.add(f.label.lower())
            for key in keys:
                ev.findings.setdefault(key, []).append((name, present, f.score, f.threshold))
            if f.text:
                for key, status in _labels_of(f.text).items():
                    if status != "uncertain":
                        ev.findings.setdefault(key, []).append((name, status == "present", None, None))
        if res.text:
            for key, status in _labels_of(res.text).items():
                if status != "uncertain":
                    ev.findings.setdefault(key, []).append((name, status == "present", None, None))
        ev.passages += [c.text for c in res.citations]
        if res.citations:
            ev.citing.add(name)
    return ev


def _units(line: str) -> list[str]:
    """Sentences of one line (abbreviations and decimals do not end a sentence)."""
    pieces = re.split(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])", line)
    out: list[str] = []
    for piece in pieces:
        if out and _ABBREV_DOTS.search(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return [p for p in out if p.strip()]


def _strip_markup(text: str) -> str:
    text = re.sub(r"^\s*(?:>\s*)+", "", text)  # block quotes
    text = re.sub(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)", "", text)  # headings, lists
    text = re.sub(r"^\s*(?:>\s*)+", "", text)
    return text.replace("**", "").replace("__", "").replace("`", "").strip(" *_|")


def _quoted_from(text: str, passages: list[str]) -> bool:
    """Whether most words of ``text`` come from the cited passages (a quote, not a claim)."""
    words = set(re.findall(r"[a-z]{3,}", text.lower()))
    source = set(re.findall(r"[a-z]{3,}", " ".join(passages).lower()))
    return bool(words) and len(words & source) >= 0.6 * len(words)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.011 or (b != 0 and abs(a - b) / abs(b) <= 0.02)


def _check_unit(unit: str, ev: _Evidence, line_cites: list[int] | None = None) -> list[str]:
    """Why ``unit`` is unsupported (empty when it is supported or makes no claim).
    ``line_cites``: passages cited elsewhere on the unit's line (a quote split into sentences)."""
    plain = _strip_markup(unit)
    problems: list[str] = []
    tags = _TAG.findall(plain)
    for tool, number in tags:
        status = ev.status.get(tool)
        if status is None:
            problems.append(f"a statement cites {tool}, which did not run")
        elif status != "ok":
            problems.append(f"a statement cites {tool}, which was {status}")
        elif number and not any(_close(float(number), n) for n in ev.numbers.get(tool, [])):
            problems.append(f"a statement gives {number} for {tool}, which output no such number")
    if _IMPERATIVE.search(plain) or _ORDER.search(plain):
        problems.append("a statement gives management orders, which no expert tool outputs")
    cites = [int(n) for n in _CITE.findall(plain)]
    if not cites and line_cites and all(tool in ev.citing for tool, _ in tags):
        quoted = [ev.passages[n - 1] for n in line_cites if 1 <= n <= len(ev.passages)]
        if quoted and _quoted_from(plain, quoted) and not _PATIENT.search(plain):
            return problems  # the rest of a cited passage
    valid = bool(cites) and all(1 <= n <= len(ev.passages) for n in cites)
    if cites and not valid:
        problems.append("a statement cites a passage that was not retrieved")
    background = (
        valid
        and all(tool in ev.citing for tool, _ in tags)
        and not _PATIENT.search(plain)
        and (not _PATIENT_WEAK.search(plain) or _quoted_from(plain, [ev.passages[n - 1] for n in cites]))
    )
    if background or _LIMITATION.search(plain):
        return problems
    labels = _labels_of(plain)
    lowered = plain.lower()
    for extra in ev.extra_labels:
        if extra not in labels and re.search(rf"(?<!\w){re.escape(extra)}(?!\w)", lowered):
            labels[extra] = "present"
    for label, status in labels.items():
        if status == "uncertain":
            continue
        support = ev.findings.get(label, [])
        if not support:
            problems.append(
                f"a statement {'states' if status == 'present' else 'denies'} {label}, "
                "which no successful tool's output covers"
            )
            continue
        said = {present for _, present, _, _ in support}
        if status == "present" and said == {False}:
            tool, _, score, thr = support[0]
            number = f"{score:.2f}, below its {thr:g} threshold" if score is not None and thr else "absent"
            problems.append(f"a statement states {label}, but {tool} scored it {number}")
        if status == "absent" and said == {True}:
            tool, _, score, _ = support[0]
            number = f" ({score:.2f})" if score is not None else ""
            problems.append(f"a statement denies {label}, but {tool} flagged it{number}")
    for value, unit_name in _MEASURE.findall(plain):
        if not any(_close(float(value), m) for m in ev.measures):
            problems.append(f"a statement gives a measurement ({value} {unit_name}) no tool made")
    for value in _RATIO.findall(plain):
        if not any(_close(float(value), m) for m in ev.measures):
            problems.append(f"a statement gives a ratio ({value}) no tool measured")
    return problems


def gives_orders(text: str) -> bool:
    """True when a sentence of ``text`` gives management orders ("insert a chest tube now")."""
    return any(
        _IMPERATIVE.search(_strip_markup(u)) or _ORDER.search(_strip_markup(u))
        for line in text.splitlines()
        for u in _units(line)
    )


def _substantive(unit: str) -> bool:
    plain = _strip_markup(unit)
    return bool(_TAG.search(plain) or _labels_of(plain) or _MEASURE.search(plain))


def check_answer(answer: str, results: Mapping[str, ToolResult], fallback: str | None = None) -> Checked:
    """Remove the unsupported sentences of an LLM-written ``answer`` (see the module docstring).

    ``fallback`` (the template answer) replaces an answer with no supported claim left.
    """
    ev = _evidence(results)
    out = Checked(answer=answer)
    kept_lines: list[str] = []
    supported = 0
    for line in answer.splitlines():
        units = _units(line)
        if not units:
            kept_lines.append(line)
            continue
        keep: list[str] = []
        line_cites = [int(n) for n in _CITE.findall(line)]
        for unit in units:
            if not _strip_markup(unit):
                keep.append(unit)
                continue
            out.checked += 1
            problems = _check_unit(unit, ev, line_cites)
            if problems:
                out.removed += 1
                out.problems += [p for p in problems if p not in out.problems]
            else:
                keep.append(unit)
                supported += _substantive(unit)
        if len(keep) == len(units):
            kept_lines.append(line)
        elif keep and _strip_markup(" ".join(keep)):
            prefix = re.match(r"^\s*(?:>\s*)*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)?", line)
            lead = prefix.group(0) if prefix else ""
            body = " ".join(keep)
            kept_lines.append(body if body.startswith(lead) else lead + body.lstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()
    if out.removed and (supported == 0 or not text) and fallback:
        text, out.replaced = fallback, True
    if out.problems:
        lead = (
            "The LLM's answer was replaced by the template answer: none of its claims is supported "
            "by the expert outputs."
            if out.replaced
            else f"{out.removed} unsupported statement{'s were' if out.removed != 1 else ' was'} "
            "removed from the LLM's answer."
        )
        text += "\n\n**Verification**\n" + lead + "\n" + "\n".join(f"- {p}." for p in out.problems)
    out.answer = text
    return out


def check_llm_answer(
    answer: str, results: Mapping[str, ToolResult], fallback: str | None = None
) -> tuple[str, list[str]]:
    """(checked answer, problems) for the verify node; when checking itself fails, the answer
    is kept and says that it was not verified."""
    try:
        checked = check_answer(answer, results, fallback)
    except Exception as exc:  # the answer must still arrive, marked; the exception goes to the trace
        log.warning("answer verification failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        failure = f"{type(exc).__name__}: {exc}"
        return answer + "\n\n" + NOT_VERIFIED.format(reason="the checker failed"), [
            f"not verified (the checker failed: {failure})"
        ]
    return checked.answer, checked.problems
