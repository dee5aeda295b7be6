"""Intents matched to manifests: which tools answer one analysed part of a question.

The policy is docs/routing.md; this module applies it to whatever tools are installed, reading
only their manifests (intents, finding labels, anatomy, example questions), so a plug-in that
declares an intent or a finding label is routed exactly like a built-in:

- **finding**: the tools whose labels cover each named finding; the generalist for findings no
  tool covers and for signs (a sign points at a label, but only a generalist reads the sign
  itself); the screening tools (finding tools with labels) for "is this normal?". Bones
  (fractures, bony lesions) are read by the generalist, with the tools whose labels cover them.
- **location**: the location tools with the tools that find what is to be located; the
  generalist when no tool covers it; location tools declaring the named anatomy.
- **measurement**: the measurement tools (with the finding's tools); the generalist for things
  they do not measure.
- **open**, **devices**, **technique**: specialists declaring the intent, else the generalist.
- **report**: report tools, with the screening and measurement tools whose output a draft uses;
  a report the user already has ("summarise this report") goes to the report tools alone.
- **knowledge**: knowledge tools; with the tools that find what "this" is when the question
  points at the image.
- **comparison**: the tools that compare studies (they declare ``comparison`` and score no
  finding labels), with the installed tools they ``use`` (run on both studies, their outputs
  are compared: scores, measurements) and the tools of the named finding or else the screening
  tools (their scores now are part of the comparison); when no tool compares studies the
  answer says so.

A *generalist* declares the ``open`` intent. Tools that declare no intents are matched by the
similarity of the part to their example questions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from copilot.routing.analysis import Part, given_report
from copilot.routing.features import featurize
from copilot.routing.lexicon import KNOWN_LABELS
from copilot.tools.contract import ToolManifest

__all__ = ["SIMILAR", "STRONG", "Catalogue", "Match", "comparers", "match_part"]

#: Cosine similarity (hashed n-grams) to an example question that routes a tool without intents.
SIMILAR = 0.5
#: A similarity at which such a tool covers the part alone (the generalist is not needed).
STRONG = 0.62
IMAGE_INTENTS = frozenset(
    {"finding", "open", "location", "measurement", "devices", "technique", "comparison"}
)
NO_PRIOR = (
    "no tool reads a prior study: the current study is described and the comparison is left to the reader"
)


def comparers(manifests: Mapping[str, ToolManifest]) -> set[str]:
    """Tools that compare a study with its prior: they declare ``comparison`` and neither score
    finding labels (a classifier declares ``comparison`` for its scores now) nor take open
    questions."""
    return {n for n, m in manifests.items() if m.compares_studies()}


def _vector(text: str) -> dict[int, float]:
    from copilot.routing.text import normalise

    idx, val = featurize(normalise(text))
    return dict(zip(idx.tolist(), val.tolist(), strict=True))


def _cosine(a: dict[int, float], b: dict[int, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return float(sum(v * b.get(k, 0.0) for k, v in a.items()))


@dataclass
class Catalogue:
    """The installed tools' manifests, indexed for matching."""

    manifests: Mapping[str, ToolManifest]
    _examples: dict[str, list[dict[int, float]]] = field(default_factory=dict, repr=False)

    def declaring(self, intent: str) -> set[str]:
        """Tools that declare ``intent``."""
        return {n for n, m in self.manifests.items() if intent in m.intents}

    @cached_property
    def generalists(self) -> set[str]:
        """Tools that take any image question no specialist covers (they declare ``open``)."""
        return self.declaring("open")

    def specialists(self, intent: str) -> set[str]:
        """Tools declaring ``intent`` that are not generalists."""
        return self.declaring(intent) - self.generalists

    @cached_property
    def screening(self) -> set[str]:
        """Finding tools with labels: they answer "is this normal?"."""
        return {n for n in self.specialists("finding") if self.manifests[n].labels}

    @cached_property
    def _labels(self) -> dict[str, set[str]]:
        return {n: {label.lower() for label in self.manifests[n].labels} for n in self.specialists("finding")}

    def covering(self, label: str) -> set[str]:
        """Finding tools whose labels include ``label`` (case-insensitive)."""
        return {n for n, labels in self._labels.items() if label.lower() in labels}

    def literal(self, text: str) -> set[str]:
        """Finding tools one of whose labels the text names word for word: labels the router's
        lexicon does not know (a plug-in's own), which it could not have found itself."""
        out = set()
        for n, labels in self._labels.items():
            for label in labels - KNOWN_LABELS:
                if len(label) > 3 and re.search(rf"\b{re.escape(label)}\b", text):
                    out.add(n)
                    break
        return out

    def anatomy(self, intent: str, structures: Iterable[str]) -> set[str]:
        """Specialists for ``intent`` that declare one of ``structures`` in their anatomy."""
        wanted = set(structures)
        return {n for n in self.specialists(intent) if wanted & set(self.manifests[n].anatomy)}

    def similar(self, text: str, names: Iterable[str] | None = None) -> dict[str, float]:
        """Best similarity of ``text`` to each tool's example questions (tools without intents by default)."""
        pool = [n for n in self.manifests if not self.manifests[n].intents] if names is None else list(names)
        if not pool:
            return {}
        query = _vector(text)
        out = {}
        for n in pool:
            if n not in self._examples:
                self._examples[n] = [_vector(q) for q in self.manifests[n].questions]
            out[n] = max((_cosine(query, e) for e in self._examples[n]), default=0.0)
        return out


@dataclass
class Match:
    """The tools one part needs and why."""

    tools: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    #: What the answer must say about what no tool can do (shown to the reader).
    caveats: list[str] = field(default_factory=list)
    #: The part asks about the image itself (an image question, a draft of its report, knowledge
    #: about what "this" is; not general knowledge, a header field or a report the user has):
    #: the plan must read the image.
    about_film: bool = False


#: Words of a knowledge question that is about medicine in general, however short it is.
_GENERAL_KNOWLEDGE = re.compile(
    r"\b(?:recommend\w*|guidelines?|criteria|society|classif\w*|staging|protocols?|defin\w*"
    r"|epidemiology)\b"
)


def match_part(part: Part, cat: Catalogue) -> Match:
    """The tools that answer ``part`` among ``cat`` (see the module docstring)."""
    intents = set(part.intents)
    out = Match()
    if not intents or intents <= {"greeting", "header"}:
        if not intents:
            _fallback(part, cat, out)
        elif "header" in intents:
            scores = cat.similar(part.text)
            out.tools |= {n for n, score in scores.items() if score >= STRONG}
        return out
    m = part.mentions
    findings = list(part.findings)
    signs = [s for s in m.signs if s not in findings]
    covered = {label: cat.covering(label) for label in findings}
    sign_tools = set().union(*(cat.covering(s) for s in signs)) if signs else set()
    term_tools = {t: cat.covering(t) for t in m.terms}
    literal = cat.literal(part.text)
    finders = set().union(*covered.values(), *term_tools.values()) | sign_tools | literal
    uncovered = (
        [label for label, tools in covered.items() if not tools]
        + [t for t, tools in term_tools.items() if not tools]
        + signs
    )
    named = bool(findings or signs or m.terms)
    general = cat.generalists
    elliptic = not (named or m.structures) and len(part.text.split()) <= 5
    if elliptic and "knowledge" in intents and _GENERAL_KNOWLEDGE.search(part.text):
        elliptic = False  # "what does Fleischner recommend?" is short, but not about this image
    about_image = m.deictic or bool(part.inherited) or (m.overall and not named) or elliptic
    if "knowledge" in intents and not about_image:
        intents = {"knowledge"}  # general knowledge ("what causes effusions?"): no image expert
    by_generalist: set[str] = set()  # intents that brought the generalist in
    out.about_film = (
        bool(intents & IMAGE_INTENTS)
        or ("report" in intents and not given_report(part.text))
        or ("knowledge" in intents and about_image)
    )

    def generalist(intent: str) -> None:
        out.tools.update(general)
        by_generalist.add(intent)

    if m.bones and intents & IMAGE_INTENTS:
        generalist("finding")  # no specialist reads bones: a fracture score bears, the generalist looks
    if "finding" in intents:
        out.tools |= finders
        if uncovered:
            generalist("finding")
        if not named and not m.devices:
            out.tools |= literal if literal else cat.screening
    if "open" in intents:
        generalist("open")
        out.tools |= set().union(*covered.values()) if covered else set()
        if m.overall and not named:
            out.tools |= cat.screening
    if "location" in intents and not ("devices" in intents and not (findings or signs)):
        where = cat.specialists("location")
        if m.bones and not signs and set(findings) <= {"Fracture"}:
            out.tools |= finders  # which rib, which bone: the generalist's (added above)
        elif findings or signs:
            out.tools |= finders | where
            if uncovered and not finders:
                generalist("location")
        elif m.terms:
            out.tools |= finders
            if not finders:
                generalist("location")
        elif m.structures and not set(m.structures) <= {"lungs", "thorax"}:
            out.tools |= cat.anatomy("location", m.structures)
            generalist("location")
        elif "finding" in intents or "open" not in intents or _identifies(part.text):
            out.tools |= cat.screening | where
    if "measurement" in intents:
        sizes = cat.specialists("measurement")
        if m.terms and not findings:
            out.tools |= finders
            if not finders:
                generalist("measurement")
        elif findings:
            out.tools |= sizes | finders
        elif not m.structures or cat.anatomy("measurement", m.structures):
            out.tools |= cat.anatomy("measurement", m.structures) if m.structures else sizes
        else:
            generalist("measurement")
    for intent in ("devices", "technique"):
        if intent in intents:
            experts = cat.specialists(intent)
            if experts:
                out.tools |= experts
            else:
                generalist(intent)
    if "report" in intents and intents == {"report"} and given_report(part.text):
        out.tools |= cat.declaring("report")  # the user's own report: no image expert adds to it
    elif "report" in intents:
        out.tools |= cat.declaring("report") | cat.screening | cat.specialists("measurement")
    if "knowledge" in intents:
        out.tools |= cat.declaring("knowledge")
        if about_image and "open" not in intents:
            if findings or signs:
                out.tools |= finders
            elif m.terms:
                generalist("knowledge")
            elif not m.structures:
                out.tools |= cat.screening
    if "comparison" in intents:
        compare = comparers(cat.manifests)
        used = {u for c in compare for u in cat.manifests[c].uses if u in cat.manifests}
        out.tools |= compare | used | ((finders if named and finders else set()) or cat.screening)
        if not compare:
            out.caveats.append(NO_PRIOR)
    _plugins(part, cat, out, by_generalist)
    if not out.tools and intents & IMAGE_INTENTS:
        out.tools |= general
    return out


_IDENTIFY = re.compile(r"^(?:what|which)\b.*\b(?:in|at|on|near|behind|above|below|within)\b")
_ATTRIBUTE = re.compile(r"\b(?:colou?r|how many|count|number|shape|organs?|size)\b")


def _identifies(text: str) -> bool:
    """ "What is X in the right lung?": naming something in a region (not its colour, shape or count)."""
    return bool(_IDENTIFY.search(text)) and not _ATTRIBUTE.search(text)


def _plugins(part: Part, cat: Catalogue, out: Match, by_generalist: set[str]) -> None:
    """Tools without declared intents, matched by example. A strong match stands in for the
    generalist when the generalist was planned only for open, device or technique questions."""
    scores = cat.similar(part.text)
    hits = {n for n, s in scores.items() if s >= SIMILAR}
    if not hits:
        return
    out.tools |= hits
    out.notes.append("matched by example: " + ", ".join(f"{n} ({scores[n]:.2f})" for n in sorted(hits)))
    if (
        any(scores[n] >= STRONG for n in hits)
        and by_generalist
        and by_generalist <= {"open", "devices", "technique"}
    ):
        out.tools -= cat.generalists


def _fallback(part: Part, cat: Catalogue, out: Match) -> None:
    """No intent recognised: the tool whose examples the part resembles most, if any is close."""
    scores = cat.similar(part.text, cat.manifests)
    if not scores:
        return
    best = max(scores, key=lambda n: scores[n])
    if scores[best] >= SIMILAR * 0.7:
        out.tools.add(best)
        out.notes.append(f"no intent recognised; closest tool by example: {best} ({scores[best]:.2f})")
