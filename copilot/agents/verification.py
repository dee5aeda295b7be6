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
4. gives management orders ("insert a chest tube now"): no expert tool outputs those;
5. reassures where no tool checked: calls the study normal ("No acute findings.", "Normal
   chest radiograph.") or an organ normal ("The heart is normal in size.", "Lungs are clear.")
   when no tool covers it (:mod:`copilot.text.reassurance` finds such claims).

A sentence **contradicts** the tools when it denies, discounts ("unlikely", "an artifact") or
calls normal (the study, or the organ) a finding a tool flagged above its own threshold. A
contradiction, a draft that leaves out a flagged finding (every finding a tool flagged must be
stated, matched after normalisation with the synonyms above), and a draft that obeys text it
was shown as data (:mod:`copilot.agents.obedience`) all send the whole answer back to the
template, with the reason under **Verification**; so does a draft with no supported statement
when tools ran. Everything is compared after Unicode folding (:func:`copilot.text.normalize.fold`:
look-alike letters, invisible characters, full-width forms), and the answer shown is cleaned
of invisible characters and of the prompt's fence tags. Sentences are split outside quotes,
so removing one never cuts a quoted passage.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from copilot.agents.obedience import obeyed
from copilot.text.fence import strip_fence_tags
from copilot.text.labeler import Status, label_text
from copilot.text.normalize import clean, fold
from copilot.text.reassurance import Reassurance, expand_contractions, reassurances
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
    "nad": "no abnormality detected",
    "wnl": "within normal limits",
    "nacpd": "no acute cardiopulmonary disease",
    "nacp": "no acute cardiopulmonary process",
    "naf": "no acute findings",
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
    #: Why the whole draft was set aside (a contradiction, a flagged finding left out, obedience).
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Positive:
    key: str
    label: str
    tool: str
    score: float | None

    def says(self) -> str:
        number = f"{self.score:.2f}, " if self.score is not None else ""
        return f"{self.label.lower()} ({number}{self.tool})"


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
    #: Findings a successful tool flagged above its own threshold.
    positives: list[_Positive] = field(default_factory=list)


@dataclass
class _Verdict:
    problems: list[str] = field(default_factory=list)
    #: Problems that contradict a tool's flagged finding (the whole draft goes).
    contradictions: list[str] = field(default_factory=list)
    #: Finding keys the sentence states present or uncertain.
    stated: set[str] = field(default_factory=set)


_RANK = {"absent": 0, "uncertain": 1, "present": 2}
_INNER_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])", re.I)


def _normalise(text: str) -> str:
    text = fold(text).replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")
    text = expand_contractions(text)
    text = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    for pattern, word in _LAY:
        text = pattern.sub(word, text)
    return text


def _labels_of(text: str) -> dict[str, Status]:
    """Finding -> status, read from the folded text and again with in-word hyphens removed
    ("pneumo-thorax"); the stronger status wins."""
    norm = _normalise(text)
    out: dict[str, Status] = {}
    for variant in {norm, _INNER_HYPHEN.sub("", norm)}:
        for k, v in label_text(variant).items():
            key = k.lower()
            if key not in out or _RANK[v] > _RANK[out[key]]:
                out[key] = v
    return out


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
            keys = set(_labels_of(f.label)) or {fold(f.label).lower()}
            if not _labels_of(f.label):
                ev.extra_labels.add(fold(f.label).lower())
            for key in keys:
                ev.findings.setdefault(key, []).append((name, present, f.score, f.threshold))
                if f.above_threshold:
                    ev.positives.append(_Positive(key, f.label, name, f.score))
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


_SPLIT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”»)\]]))\s+(?=[\"'“«(\[]?[A-Z0-9])")


def _inside_quote(text: str) -> bool:
    return text.count('"') % 2 == 1 or text.count("“") > text.count("”") or text.count("«") > text.count("»")


def _units(line: str) -> list[str]:
    """Sentences of one line (abbreviations and decimals do not end a sentence, and a quoted
    passage is never split: an unclosed quote runs to the end of the line)."""
    pieces: list[str] = []
    start = 0
    for m in _SPLIT.finditer(line):
        if _inside_quote(line[: m.start()]):
            continue
        pieces.append(line[start : m.start()])
        start = m.end()
    pieces.append(line[start:])
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
    words = set(re.findall(r"[a-z]{3,}", fold(text).lower()))
    source = set(re.findall(r"[a-z]{3,}", fold(" ".join(passages)).lower()))
    return bool(words) and len(words & source) >= 0.6 * len(words)


_QUOTED_SPAN = re.compile(r"\"[^\"]+\"?|“[^”]+”?|«[^»]+»?")


def _quotes_only(text: str, passages: list[str]) -> bool:
    """Whether ``text`` is passages quoted in quotation marks, the words around them making
    no claim of their own."""
    spans = _QUOTED_SPAN.findall(text)
    if not spans or not all(_quoted_from(span, passages) for span in spans):
        return False
    around = _QUOTED_SPAN.sub(" ", text)
    return not (_labels_of(around) or _MEASURE.search(around) or reassurances(around))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.011 or (b != 0 and abs(a - b) / abs(b) <= 0.02)


_SCOPED = re.compile(r"\b(?:flagged|threshold|scored?|calibrated|above|below)\b", re.I)


def _flagged_in(ev: _Evidence, keys: Iterable[str], tools: set[str] | None = None) -> list[_Positive]:
    wanted = set(keys)
    return [p for p in ev.positives if p.key in wanted and (tools is None or p.tool in tools)]


def _reassuring(
    plain: str, r: Reassurance, ev: _Evidence, tags: list[tuple[str, str]], lenient: bool
) -> _Verdict:
    """Problems with the reassuring claims ``r`` of one sentence (see the module docstring).
    ``lenient``: a limitation sentence, whose unchecked reassurance is not counted."""
    out = _Verdict()
    tagged = {tool for tool, _ in tags if ev.status.get(tool) == "ok"}
    scoped = bool(tagged) or bool(_SCOPED.search(plain))
    if r.global_kind:
        flagged = [p for p in ev.positives if not tagged or p.tool in tagged]
        if r.global_kind == "all" and flagged:
            out.contradictions.append(
                f"a statement calls the study normal ({r.global_words!r}), but {flagged[0].tool} flagged "
                f"{flagged[0].says().split(' (')[0]} ({flagged[0].score or 0:.2f})"
            )
        elif not scoped and not lenient:
            out.problems.append(
                f"a statement calls the study normal ({r.global_words!r}), which no tool checks: "
                "each tool reports only its own findings"
            )
    for words, labels in r.organs:
        keys = {label.lower() for label in labels}
        flagged = _flagged_in(ev, keys)
        if flagged:
            p = flagged[0]
            out.contradictions.append(
                f"a statement says {words!r}, but {p.tool} flagged {p.label.lower()} ({p.score or 0:.2f})"
            )
        elif not keys <= set(ev.findings) and not lenient:
            unchecked = ", ".join(sorted(keys - set(ev.findings)))
            out.problems.append(f"a statement says {words!r}, but no successful tool checked {unchecked}")
    for label, words in r.dismissed.items():
        flagged = _flagged_in(ev, {label.lower()})
        if flagged:
            out.contradictions.append(
                f"a statement discounts {label.lower()} ({words!r}), but {flagged[0].tool} flagged it "
                f"({flagged[0].score or 0:.2f})"
            )
    out.problems += out.contradictions
    return out


def _check_unit(unit: str, ev: _Evidence, line_cites: list[int] | None = None) -> _Verdict:
    """Why ``unit`` is unsupported (no problems when it is supported or makes no claim).
    ``line_cites``: passages cited elsewhere on the unit's line (a quote split into sentences)."""
    plain = _strip_markup(unit)
    out = _Verdict()
    problems = out.problems
    tags = _TAG.findall(fold(plain))
    for tool, number in tags:
        status = ev.status.get(tool)
        if status is None:
            problems.append(f"a statement cites {tool}, which did not run")
        elif status != "ok":
            problems.append(f"a statement cites {tool}, which was {status}")
        elif number and not any(_close(float(number), n) for n in ev.numbers.get(tool, [])):
            problems.append(f"a statement gives {number} for {tool}, which output no such number")
    folded = _normalise(plain)
    if _IMPERATIVE.search(folded) or _ORDER.search(folded):
        problems.append("a statement gives management orders, which no expert tool outputs")
    cites = [int(n) for n in _CITE.findall(plain)]
    if not cites and line_cites and all(tool in ev.citing for tool, _ in tags):
        quoted = [ev.passages[n - 1] for n in line_cites if 1 <= n <= len(ev.passages)]
        if quoted and _quoted_from(plain, quoted) and not _PATIENT.search(folded):
            return out  # the rest of a cited passage
    valid = bool(cites) and all(1 <= n <= len(ev.passages) for n in cites)
    cited = [ev.passages[n - 1] for n in {*cites, *(line_cites or [])} if 1 <= n <= len(ev.passages)]
    if cited and not problems and _quotes_only(plain, cited):
        return out  # a passage quoted whole, with its number: the source's words, not a claim
    if cites and not valid:
        problems.append("a statement cites a passage that was not retrieved")
    background = (
        valid
        and all(tool in ev.citing for tool, _ in tags)
        and not _PATIENT.search(folded)
        and (not _PATIENT_WEAK.search(folded) or _quoted_from(plain, [ev.passages[n - 1] for n in cites]))
    )
    if background:
        return out
    limitation = bool(_LIMITATION.search(folded))
    r = reassurances(folded)
    if r:
        verdict = _reassuring(folded, r, ev, tags, limitation)
        problems += verdict.problems
        out.contradictions += verdict.contradictions
    if limitation:
        return out
    labels = _labels_of(plain)
    for label in r.denied:
        labels[label.lower()] = "absent"
    for label in r.dismissed:
        if not _flagged_in(ev, {label.lower()}):
            labels[label.lower()] = "absent"
    lowered = folded.lower()
    for extra in ev.extra_labels:
        if extra not in labels and re.search(rf"(?<!\w){re.escape(extra)}(?!\w)", lowered):
            labels[extra] = "present"
    for label, status in labels.items():
        if status == "uncertain":
            out.stated.add(label)
            continue
        support = ev.findings.get(label, [])
        if not support:
            problems.append(
                f"a statement {'states' if status == 'present' else 'denies'} {label}, "
                "which no successful tool's output covers"
            )
            continue
        said = {present for _, present, _, _ in support}
        if status == "present":
            out.stated.add(label)
        if status == "present" and said == {False}:
            tool, _, score, thr = support[0]
            number = f"{score:.2f}, below its {thr:g} threshold" if score is not None and thr else "absent"
            problems.append(f"a statement states {label}, but {tool} scored it {number}")
        if status == "absent" and True in said:
            tool, _, score, _ = next(s for s in support if s[1])
            number = f" ({score:.2f})" if score is not None else ""
            problem = f"a statement denies {label}, but {tool} flagged it{number}"
            problems.append(problem)
            out.contradictions.append(problem)
    for value, unit_name in _MEASURE.findall(folded):
        if not any(_close(float(value), m) for m in ev.measures):
            problems.append(f"a statement gives a measurement ({value} {unit_name}) no tool made")
    for value in _RATIO.findall(folded):
        if not any(_close(float(value), m) for m in ev.measures):
            problems.append(f"a statement gives a ratio ({value}) no tool measured")
    return out


def gives_orders(text: str) -> bool:
    """True when a sentence of ``text`` gives management orders ("insert a chest tube now")."""
    return any(
        _IMPERATIVE.search(_strip_markup(u)) or _ORDER.search(_strip_markup(u))
        for line in text.splitlines()
        for u in _units(line)
    )


def _substantive(unit: str) -> bool:
    plain = _strip_markup(unit)
    return bool(_TAG.search(plain) or _CITE.search(plain) or _labels_of(plain) or _MEASURE.search(plain))


def _lead(out: Checked) -> str:
    if out.replaced and out.reasons:
        return (
            "The language model's draft "
            + "; it ".join(out.reasons)
            + "; the answer above is built from the tool results instead."
        )
    if out.replaced:
        return (
            "The language model's draft was replaced by the template answer: none of its claims is "
            "supported by the expert outputs."
        )
    if out.reasons:  # no template to fall back on: the contradicting sentences were removed
        return "The language model's draft " + "; it ".join(out.reasons) + "."
    return (
        f"{out.removed} unsupported statement{'s were' if out.removed != 1 else ' was'} "
        "removed from the LLM's answer."
    )


def check_answer(
    answer: str,
    results: Mapping[str, ToolResult],
    fallback: str | None = None,
    untrusted: Mapping[str, Sequence[str]] | None = None,
) -> Checked:
    """Remove the unsupported sentences of an LLM-written ``answer`` (see the module docstring).

    ``fallback`` (the template answer) replaces an answer that contradicts a tool, leaves out a
    flagged finding, obeys ``untrusted`` text (source -> texts, e.g. ``{"the study header":
    [...]}``; retrieved passages are read from ``results``) or has no supported claim left.
    """
    ev = _evidence(results)
    answer = clean(strip_fence_tags(answer))
    out = Checked(answer=answer)
    shown = {"a retrieved passage": ev.passages, **(untrusted or {})}
    out.reasons += obeyed(answer, shown)
    kept_lines: list[str] = []
    supported = 0
    stated: set[str] = set()
    contradictions: list[str] = []
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
            verdict = _check_unit(unit, ev, line_cites)
            contradictions += verdict.contradictions
            if verdict.problems:
                out.removed += 1
                out.problems += [p for p in verdict.problems if p not in out.problems]
            else:
                keep.append(unit)
                stated |= verdict.stated
                supported += _substantive(unit)
        if len(keep) == len(units):
            kept_lines.append(line)
        elif keep and _strip_markup(" ".join(keep)):
            prefix = re.match(r"^\s*(?:>\s*)*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)?", line)
            lead = prefix.group(0) if prefix else ""
            body = " ".join(keep)
            kept_lines.append(body if body.startswith(lead) else lead + body.lstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()
    if contradictions:
        out.reasons.append("contradicts the tool results")
    left_out = {p.key: p for p in ev.positives if p.key not in stated}
    if left_out:
        out.reasons.insert(0, "left out " + ", ".join(p.says() for p in left_out.values()))
    if out.reasons:
        out.problems += [r for r in out.reasons if r not in out.problems]
    informative = any(r.ok and (r.findings or r.citations or r.text) for r in results.values())
    unsupported = supported == 0 and (out.removed > 0 or informative or not text)
    if fallback and (out.reasons or unsupported):
        text, out.replaced = fallback, True
    if out.problems:
        problems = [p for p in out.problems if p not in out.reasons]
        text += "\n\n**Verification**\n" + _lead(out) + "".join(f"\n- {p}." for p in problems)
    out.answer = text
    return out


def check_llm_answer(
    answer: str,
    results: Mapping[str, ToolResult],
    fallback: str | None = None,
    untrusted: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, list[str]]:
    """(checked answer, problems) for the verify node: the answer always ends with a
    **Verification** section. When checking itself fails, the answer is kept and says that
    it was not verified."""
    try:
        checked = check_answer(answer, results, fallback, untrusted)
    except Exception as exc:  # the answer must still arrive, marked; the exception goes to the trace
        log.warning("answer verification failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        failure = f"{type(exc).__name__}: {exc}"
        return clean(strip_fence_tags(answer)) + "\n\n" + NOT_VERIFIED.format(reason="the checker failed"), [
            f"not verified (the checker failed: {failure})"
        ]
    text = checked.answer
    if not checked.problems:
        n = checked.checked
        text += (
            f"\n\n**Verification**\nThe language model's answer was checked against the tool outputs: "
            f"{'all ' if n != 1 else ''}{n} statement{'s are' if n != 1 else ' is'} supported."
        )
    return text, checked.problems
