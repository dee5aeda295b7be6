"""A question, analysed: its parts, each with intents (the model), what it names (the lexicon)
and, for header questions, which header fields it asks about (exact rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from copilot.routing.intents import TECHNIQUE_FIELDS, HeaderField, Intent
from copilot.routing.lexicon import Mentions, mentions
from copilot.routing.model import IntentModel, load_model
from copilot.routing.text import prepare, split_parts

__all__ = ["GREETING", "Analysis", "Part", "analyze", "given_report", "header_fields"]

GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hey there|thanks|thank you|thx|cheers|good (?:morning|afternoon|evening)|ok|okay|"
    r"bye|"
    r"goodbye)\b(?:[\s,!.?]+(?:there|doc|that helps|very much|a lot|again|copilot|got it|understood"
    r"|(?:that(?:'s| is| was) )?(?:very |really |so |super )?(?:helpful|useful|great|perfect|clear|brilliant"
    r"|appreciated)|much appreciated))*[\s!.?]*$",
    re.I,
)
_HEADER: dict[HeaderField, re.Pattern[str]] = {
    "modality": re.compile(
        r"\b(?:modality|modalities|(?:type|kind|sort) of (?:medical )?(?:image|imaging|scan|radiograph|film|"
        r"study|x-ray)|"
        r"is (?:this|it) (?:a |an )?(?:mri|mr|ct|x-ray|chest x-ray|radiograph|chest radiograph|plain film|"
        r"ultrasound|pet|mammogram|kub|special kind)|(?:taken|acquired|obtained) (?:with|via|by|using)|"
        r"how was (?:this|the) (?:image|film|x-ray|picture) (?:taken|acquired)|imaging (?:is|was) used|"
        r"what (?:imaging|image) modality|ct scan|mri scan)\b"
    ),
    "body_part": re.compile(
        r"\b(?:body part|part of the (?:human )?body|organ systems? (?:is |are )?(?:imaged|pictured|shown|"
        r"visualized|"
        r"primarily|being)|what organ system|study of the|image of the|exist in the|which part do|"
        r"what was imaged|where does the (?:picture|image)|region imaged|is this (?:a )?chest (?:film|study|"
        r"x-ray))\b"
    ),
    "view": re.compile(
        r"\b(?:view|projection|plane|planes|orientation|oriented|laterality|pa|ap|lateral|coronal|sagittal|"
        r"axial|"
        r"transverse|frontal|posteroanterior|anteroposterior|anterior[- ]posterior)\b"
    ),
    "sex": re.compile(r"\b(?:sex|gender|male|female|man or (?:a )?woman)\b"),
    "age": re.compile(r"\b(?:age|how old|years old|aged)\b"),
    "series": re.compile(r"\b(?:series|how many (?:images|pictures|files)|number of images)\b"),
    "date": re.compile(r"\b(?:when was|what date|which date|date of|(?:study|exam|examination|scan) date)\b"),
    "thickness": re.compile(
        r"\b(?:slice (?:thickness|spacing|interval|gap|width)|(?:thick|thin)(?:ness)? (?:are|were|is) the "
        r"(?:slices|cuts|sections)|how thick|spacing between (?:the )?slices|section thickness|"
        r"reconstruction interval|voxel size)\b"
    ),
    "kernel": re.compile(r"\b(?:(?:convolution|reconstruction) (?:kernel|filter|algorithm)|kernel)\b"),
    "contrast": re.compile(
        r"\b(?:(?:was|is|were) (?:iv |intravenous |oral )?contrast (?:given|used|administered|injected)|"
        r"contrast (?:phase|agent|medium|media|bolus)|(?:with|without|pre|post)[- ]?(?:iv )?contrast|"
        r"non[- ]?contrast|contrast[- ]enhanced (?:ct|mri?|scan|study|series)|"
        r"(?:arterial|venous|portal venous|delayed|nephrographic) phase|which phase|what phase)\b"
    ),
    "sequence": re.compile(
        r"\b(?:(?:mri?|pulse|scanning|which|what) sequences?|sequence name|echo time|repetition time|"
        r"te and tr|tr and te|(?:what|which) (?:is the )?(?:te|tr)|weighting|t1 or t2)\b"
    ),
    "window": re.compile(
        r"\b(?:(?:what|which) (?:window|windows|windowing|w/?l)|window (?:setting|settings|level|width|"
        r"centre|center|preset|presets)|windowing)\b"
    ),
}


#: Least probability of the next likeliest intent when a "header" question names no header field.
HEADER_FALLBACK = 0.1


def header_fields(part: str) -> tuple[HeaderField, ...]:
    """The header fields a normalised part asks about (exact word rules)."""
    return tuple(name for name, pattern in _HEADER.items() if pattern.search(part))


@dataclass(frozen=True)
class Part:
    """One part of a question: its text, intents, what it names and inherited findings."""

    text: str
    intents: tuple[Intent, ...]
    mentions: Mentions
    header: tuple[HeaderField, ...] = ()
    inherited: tuple[str, ...] = ()
    probabilities: dict[Intent, float] = field(default_factory=dict, compare=False)
    #: True when the part continues the previous question and took over its kind.
    continued: bool = False

    @property
    def findings(self) -> tuple[str, ...]:
        """Labels the part asks about: named, or inherited through "it"/"this" from earlier."""
        return self.mentions.findings or self.inherited


@dataclass(frozen=True)
class Analysis:
    """A whole question, analysed part by part."""

    question: str
    parts: tuple[Part, ...]

    @property
    def intents(self) -> tuple[Intent, ...]:
        """Every intent of every part, in order, once."""
        return tuple(dict.fromkeys(i for p in self.parts for i in p.intents))

    @property
    def findings(self) -> tuple[str, ...]:
        """Every finding label the question asks about (the focus of a follow-up)."""
        return tuple(dict.fromkeys(f for p in self.parts for f in p.findings))

    @property
    def header(self) -> tuple[HeaderField, ...]:
        """Header fields asked about by header parts."""
        return tuple(dict.fromkeys(h for p in self.parts if "header" in p.intents for h in p.header))

    @property
    def in_scope(self) -> bool:
        """False when no part is about imaging or medicine ("what is the weather today?"): the
        router read no kind of question but an open one, and the question names no finding,
        anatomy or region, says no "it"/"this", and has no word of the domain (:data:`DOMAIN`)."""
        for p in self.parts:
            m = p.mentions
            if set(p.intents) - {"open"} or p.inherited or p.continued:
                return True  # the router read a kind of question of the domain
            if m.named or m.structures or m.region or m.overall or m.deictic or m.pronoun:
                return True
            if DOMAIN.search(p.text):
                return True
        return not self.parts

    @property
    def follow_up(self) -> bool:
        """True when a part leans on the previous turn (its findings or its kind of question)."""
        return any(p.inherited or p.continued for p in self.parts)

    @property
    def no_expert(self) -> bool:
        """True when every part is a greeting or a header question."""
        return all(set(p.intents) <= {"greeting", "header"} and p.intents for p in self.parts)


_DEFINITION = re.compile(
    r"(?:what (?:is|are)|define|definition of|meaning of|explain)\s+(?:an?\s+)?(?P<term>[a-z][a-z "
    r"-]{2,40}?)\??"
)


def _defines(part: str) -> bool:
    """True for "what is atelectasis?", "define consolidation": the rest names only a finding."""
    m = _DEFINITION.fullmatch(part)
    if m is None:
        return False
    term = m.group("term")
    found = mentions(term)
    return (
        found.named
        and not found.deictic
        and not term.startswith(("the ", "this ", "that "))
        and len(term.split()) <= 4
    )


def _settle_header(
    intents: tuple[Intent, ...], probs: dict[Intent, float], fields: tuple[HeaderField, ...]
) -> tuple[Intent, ...]:
    """Exact rules around the model's header intent: a header question names a header field (else
    the next likeliest intent stands), and a header question is not also an open image question."""
    if "header" not in intents:
        return intents
    if not fields:
        rest = tuple(i for i in intents if i != "header")
        if rest:
            return rest
        others = sorted((p, i) for i, p in probs.items() if i not in ("header", "greeting"))
        return (others[-1][1],) if others and others[-1][0] >= HEADER_FALLBACK else ()
    return tuple(i for i in intents if i != "open")


#: Words of the copilot's domain besides the lexicon's findings, signs and anatomy: the image
#: and the study, what an image shows, the patient, and medical knowledge. A question with none
#: of them, nor a finding, structure, region or "it"/"this", is outside the copilot's scope.
DOMAIN = re.compile(
    r"\b(?:images?|pictures?|photos?|films?|x-?rays?|cxr|radiograph\w*|scans?|stud(?:y|ies)|exams?|"
    r"examination|views?|projection|ct|mri?|pet|ultrasound|dicom|series|slices?|patients?|pt|person|"
    r"chest|thora\w*|lungs?|heart|cardi\w*|pulmon\w*|pleura\w*|ribs?|bones?|spine|diaphragm\w*|trachea|"
    r"airways?|abdom\w*|stomach|bowel|liver|organs?|body|tubes?|lines?|catheters?|devices?|drains?|"
    r"pacemakers?|wires?|clips?|hardware|implants?|intubat\w*|ett|ngt|picc|opacit\w*|densit\w*|"
    r"lucen\w*|shadows?|spots?|dots?|marks?|markings?|structures?|areas?|regions?|sides?|lobes?|"
    r"zones?|ap(?:ex|ices)|bases?|bright\w*|dark\w*|white|black|gr[ae]y|normal|abnormal\w*|"
    r"findings?|patholog\w*|diseases?|disorders?|conditions?|diagnos\w*|differential|ddx|causes?|"
    r"caused|symptoms?|signs?|treat\w*|therap\w*|management|manage|guidelines?|prognosis|follow-?up|"
    r"reports?|impression|compar\w*|prior|previous|earlier|change[ds]?|interval|sizes?|big|large|small|"
    r"measure\w*|ratio|ctr|enlarge\w*|widths?|left|right|bilateral|quality|exposure|rotat\w*|"
    r"inspiration|position\w*|air|fluid|blood|mass(?:es)?|lesions?|nodules?|tumou?rs?|cancer|"
    r"malignan\w*|infection|inflamm\w*|fractures?|surgery|surgical|medical|clinical|radiolog\w*|"
    r"modality|age|sex|gender|male|female|old|seen|visible|shown|shows?|appear\w*|look(?:s|ing)?|"
    r"distribution\w*|pattern\w*|borders?|margins?|contours?|outlines?|shapes?|texture|"
    r"thanks?|thank you|hello|hi|hey|bye)\b"
)

#: A follow-up that continues the previous question ("what else could it be?", "anything
#: else?", "and the other side?"): it keeps that question's kind.
CONTINUATION = re.compile(
    r"\b(?:else|other(?:s| (?:ones?|possibilit\w*|options?|causes?|diagnos\w*|things?))?|another|"
    r"more|alternatives?)\b|^(?:and|also|what about|how about)\b"
)
#: Intents a continuation may carry over (a greeting or a header question is not continued).
CARRIED: frozenset[Intent] = frozenset(
    {"finding", "location", "measurement", "devices", "technique", "knowledge", "comparison"}
)


def _continued(
    piece: str, found: Mentions, intents: tuple[Intent, ...], previous: tuple[Intent, ...]
) -> tuple[Intent, ...]:
    """The intents of a part that continues the previous question: that question's kind, plus
    what the part itself asks beyond an open question. Other parts keep their own intents."""
    carried = tuple(i for i in previous if i in CARRIED)
    if not carried or found.named or found.structures or not CONTINUATION.search(piece):
        return intents
    if not set(intents) <= {"open", "knowledge", "finding"}:
        return intents  # the part asks something specific (where, how big, a report...)
    own = tuple(i for i in intents if i != "open" or "open" in previous)
    return tuple(dict.fromkeys((*carried, *own)))


#: A yes/no question about presence ("is there X suggestive of pneumonia?"): about the film.
PRESENCE = re.compile(
    r"^(?:is there|are there|was there|were there|is this|are these|does (?:this|the|he|she)|"
    r"do (?:you|we|i) see|can (?:you|we|i) see|could (?:you|we) see|any|has (?:this|the)|"
    r"have (?:you|we))\b"
)
#: What makes a question knowledge even when it asks about presence (a cause, a treatment, a
#: guideline...); "suggestive of", "consistent with", "likely" alone do not.
KNOWLEDGE_ASKED = re.compile(
    r"\b(?:caus\w*|why|treat\w*|manag\w*|guidelines?|recommend\w*|differential|next step|"
    r"prognos\w*|symptoms?|prevent\w*|defin\w*|mean\w*|follow[- ]?up|biopsy|diagnos\w*|risk|"
    r"complications?|used for|similar|literature|explain\w*)\b"
)
#: A report the user already has ("summarise this report"): the report tool alone reads it.
GIVEN_REPORT = re.compile(
    r"\b(?:this|the|my|that|attached|following|above|radiology|radiologist'?s?|prior|previous) "
    r"reports?\b"
)


def given_report(part: str) -> bool:
    """True for a question about a report the user already has ("summarise this report", "what
    does the radiology report say?"), not a request for one ("draft a report")."""
    return bool(GIVEN_REPORT.search(part) and not _REPORT_REQUEST.search(part) and _ABOUT_REPORT.search(part))


_REPORT_REQUEST = re.compile(r"\b(?:draft|write|generate|create|make|produce|prepare|dictate)\b")
_ABOUT_REPORT = re.compile(
    r"\b(?:summar\w*|explain\w*|simplif\w*|plain (?:english|language|words)|"
    r"what does|tell me|translate|mean\w*)\b"
)
#: The patient's position, not the image's projection: a technique question.
PATIENT_POSITION = re.compile(
    r"\b(?:patient|pt|person|subject|he|she)\b[\w' ]{0,20}\b(?:oriented|orientation|positioned|"
    r"position\w*|lying|placed)\b|\b(?:orientation|position\w*) of the (?:patient|body)\b"
)


#: How two findings differ, in general: knowledge ("how does atelectasis differ from
#: consolidation on CXR?"), unless the question points at this image ("is this X or Y?").
_DIFFER = re.compile(
    r"\b(?:differ\w*|difference|distinguish\w*|differentiat\w*|tell (?:\w+ ){1,4}(?:from|apart))\b"
)
_POINTING = re.compile(r"\b(?:this|these|here|the (?:image|film|x-ray|radiograph|study))\b")


def _pasted_report(text: str) -> tuple[str, str] | None:
    """A question about a report the user pasted ("summarise this report: Heart size normal.
    ..."): the question and the report's text, which is data to summarise, never parts to
    route (its findings would pull in the image tools)."""
    head, sep, body = text.partition(":")
    if sep and len(body.split()) >= 3 and given_report(head):
        return head.strip(), body.strip()
    return None


#: What makes a technique question also a knowledge question ("why this kernel?"); "what window
#: should I use" is answered from the header with the standard presets, not by a search.
TECHNIQUE_KNOWLEDGE = re.compile(
    r"\b(?:why|explain\w*|mean\w*|defin\w*|guidelines?|literature|difference between|how does)\b"
)


def _technique(
    piece: str, fields: tuple[HeaderField, ...], intents: tuple[Intent, ...]
) -> tuple[Intent, ...]:
    """A part naming a CT/MR technique field is a header question (no image tool), plus
    knowledge only when it also asks for an explanation."""
    if not set(fields) & set(TECHNIQUE_FIELDS):
        return intents
    return ("header", "knowledge") if TECHNIQUE_KNOWLEDGE.search(piece) else ("header",)


def _rules(piece: str, found: Mentions, intents: tuple[Intent, ...]) -> tuple[Intent, ...]:
    """Exact rules on top of the model (docs/routing.md, section 3): a presence question is
    about the film unless it asks for knowledge; devices named make a device question; the
    patient's position is technique; a report the user has goes to the report tool."""
    out = list(intents)
    if "knowledge" in out and PRESENCE.search(piece) and not KNOWLEDGE_ASKED.search(piece):
        out.remove("knowledge")
        if not out:
            out.append("finding" if found.named or found.overall else "open")
    image = {"finding", "open", "location", "measurement", "technique"}
    if found.devices and "devices" not in out and (set(out) & image or not out):
        out.append("devices")
    if PATIENT_POSITION.search(piece):
        out = [i for i in out if i not in ("header", "open")]
        if "technique" not in out:
            out.append("technique")
    if _DIFFER.search(piece) and len(found.findings) >= 2 and not _POINTING.search(piece):
        out = ["knowledge"]
    if given_report(piece):
        out = ["report"]
    return tuple(out)


def analyze(
    question: str,
    focus: tuple[str, ...] | list[str] = (),
    model: IntentModel | None = None,
    previous: tuple[Intent, ...] | list[Intent] = (),
) -> Analysis:
    """Split ``question`` into parts and classify each; ``focus`` (the findings of the previous
    turn) resolves "it"/"this" in follow-ups, and ``previous`` (its intents) keeps the kind of
    question in a continuation: after "what is the differential for this opacity?", "what else
    could it be?" is a differential too."""
    model = model or load_model()
    text, framed = prepare(question)
    if GREETING.match(text):
        return Analysis(question, (Part(text, ("greeting",), Mentions()),))
    pasted = _pasted_report(text)
    if pasted is not None:
        return Analysis(question, (Part(pasted[0], ("report",), mentions(pasted[0])),))
    parts: list[Part] = []
    carried = tuple(focus)
    for piece in split_parts(text):
        found = mentions(piece)
        if framed and not found.deictic:
            found = replace(found, deictic=True)  # "based on the image" said anywhere
        intents, probs = model.predict(piece)
        intents = tuple(i for i in intents if i != "greeting")  # greetings are matched exactly, above
        fields = header_fields(piece)
        intents = _settle_header(intents, probs, fields)
        own_intents = intents
        intents = _continued(piece, found, intents, tuple(previous))
        if _DEFINITION.fullmatch(piece) and _defines(piece):
            intents = ("knowledge",)
        intents = _rules(piece, found, intents)
        intents = _technique(piece, fields, intents)
        if "report" in intents and "open" in intents and not found.named and not found.structures:
            intents = tuple(i for i in intents if i != "open")
        elliptic = not found.named and not found.structures and len(piece.split()) <= 4
        inherited = carried if not found.findings and (found.pronoun or elliptic) else ()
        parts.append(Part(piece, intents, found, fields, inherited, probs, intents != own_intents))
        if found.findings:
            carried = found.findings
    return Analysis(question, tuple(parts))
