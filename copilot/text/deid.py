"""De-identification of free text before it leaves the machine.

:func:`find_phi` finds the identifiers in a text that no header field announced: a relative's
name typed into a StudyDescription, a phone number in a question, a file path inside a tool's
error message. Rules, in order of precedence where spans overlap:

- ``PATH``: absolute or home-relative paths (quoted ones may hold spaces), Windows paths and
  file names with an image, text or data extension. A path never reaches an LLM, whatever it
  holds.
- ``EMAIL``, ``URL``.
- ``ID``: social security numbers (``123-45-6789``), NHS and SIN numbers (3-3-4, 3-3-3 digits),
  Medicare beneficiary identifiers, DICOM UIDs, runs of six or more digits, and any code that
  follows an identifier word (MRN, SSN, NHS, ID, accession, chart, record...).
- ``DATE``: every day-level date (ISO, DICOM ``YYYYMMDD``, ``d/m/y`` and ``m/d/y`` with 2 or 4
  digit years and any of ``/ - .``, month names and abbreviations in either order, ordinals,
  ``02-FEB-2022``), month and year (``3/2019``, ``December 2020``), a day and month after a
  date word (``seen 5/6``), and a year after a birth word (``DOB 1975``). A year on its own is
  kept: HIPAA's safe harbour allows it.
- ``PHONE``: 7 to 15 digits in groups (``(+1) 617-555-0142``, ``07700 900123``), extensions.
- ``AGE``: ages of 90 and over (HIPAA groups them).
- ``LOCATION``: ward, bed, bay, room, station and unit numbers, named wards, street addresses.
- ``INSTITUTION``: "St Elsewhere", "X General", "X Hospital/Clinic/Medical Center".
- ``NAME``: DICOM person names (``DOE^JOHN``); names after a title (Mr, Dr...), a relation
  (daughter, husband, NOK...) or a label (``pt:``, called, nickname); first names and
  nicknames from the census lists with the surname that follows; surnames on their own when
  capitalised. Names that are also words ("Mark", "Rose", "May") need one of those cues, and
  eponyms ("Kerley B lines", "Hampton hump") are kept.

Measured on the labelled sets in ``tests/data/phi_*.jsonl`` (``tests/test_phi.py`` prints
precision and recall). Pattern rules miss what they were not written for: known identifiers
of the study are removed first by :class:`copilot.text.redact.Redactor`, so these rules are a
second net, not the only one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from copilot.text.names import AMBIGUOUS, CLINICAL_WORDS, FIRST_NAMES, NICKNAMES, SURNAMES

__all__ = ["Span", "deidentify", "find_phi", "nicknames_of"]


@dataclass(frozen=True)
class Span:
    """An identifier found in a text: ``text[start:end]`` is of ``kind``."""

    start: int
    end: int
    kind: str


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that are never names, whatever their case (function words and report vocabulary).
FUNCTION_WORDS = _words(
    """
    a an and are as at be been but by can could did do does for from had has have he her here
    him his how i if in into is it its me my no not of on or our she so than that the their them
    then there these they this those to up us was we were what when where which who whom why will
    with would you your yes ok please thanks today yesterday tomorrow now any all some each
    phone mobile cell tel call called contact email send result results report reports film
    films image images study studies view views series chest lung lungs heart xray x-ray cxr
    portable bedside urgent stat routine follow followup up prior previous compare comparison
    accompanying attending present worried says said asks asked wants want know needs about
    after before since during while pre post op pre-op post-op icu er ed ae a&e nok mrn dob ssn nhs id pt
    patient patients left right bilateral upper lower lobe base apex line tube ward bed bay room
    """
)
NEVER_NAMES = FUNCTION_WORDS | CLINICAL_WORDS
#: Nouns that make a preceding surname an eponym ("Hampton hump", "Kerley B lines").
EPONYM_NOUNS = _words(
    """
    sign signs syndrome disease lines line hump tumor tumour hernia criteria view catheter
    classification score procedure method fracture position test maneuver manoeuvre point
    space angle law effect phenomenon reflex triad pattern nodes node classification scale
    society
    """
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_DATE_WORD = r"(?:seen|on|dated?|since|from|until|till|admitted|discharged|performed|taken|of)"
_BIRTH = r"(?:born(?:\s+in|\s+on)?|dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|b\.)"

_I = re.IGNORECASE
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # Paths: quoted (spaces allowed), POSIX, home, Windows, UNC, bare file names.
    ("PATH", re.compile(r"""(['"])(?:~|\.{1,2})?/[^'"\n]*\1|(['"])[A-Za-z]:\\[^'"\n]*\2""")),
    ("PATH", re.compile(r"(?<![\w/.:])(?:(?:~|\.{1,2})/|/[^\s/'\"<>|]+/)[^\s'\"<>|]*")),
    ("PATH", re.compile(r"(?<!\w)(?:[A-Za-z]:\\|\\\\)[^\s'\"<>|]+")),
    (
        "PATH",
        re.compile(
            r"(?<![\w.])[\w^.-]+\.(?:dcm|dicom|ima|img|png|jpe?g|tiff?|bmp|nii(?:\.gz)?|txt|md|"
            r"jsonl|json|csv|xml|pdf|sqlite|db)\b",
            _I,
        ),
    ),
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("URL", re.compile(r"\b(?:https?://|www\.)\S+", _I)),
    # National and record identifiers.
    ("ID", re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")),  # SSN
    ("ID", re.compile(r"\b\d{3}[- ]\d{3}[- ]\d{3}\b")),  # SIN
    ("ID", re.compile(r"\b\d[A-Z][A-Z\d]\d-?[A-Z][A-Z\d]\d-?[A-Z]{2}\d{2}\b")),  # Medicare MBI
    ("ID", re.compile(r"\b\d+(?:\.\d+){4,}\b")),  # DICOM UIDs
    (
        "ID",
        re.compile(
            r"\b(?:mrn|ssn|nhs|sin|uid|id|acc|accession|chart|record|medicare|medicaid|"
            r"hospital|insurance|policy|passport|licen[cs]e|soc\.? sec\.?|social security|"
            r"case|number|no|#)\b"
            r"(?:\s*(?:number|no\.?|#|num))?\s*[:#]?\s*(?P<phi>(?=[A-Z\d-]*\d)[A-Z\d][A-Z\d-]{3,})\b",
            _I,
        ),
    ),
    ("ID", re.compile(r"\b[A-Z]{0,4}\d{6,}\b")),
    # Dates.
    ("DATE", re.compile(rf"\b{_YEAR}[-/.](?:0?[1-9]|1[0-2])[-/.]{_DAY}\b")),
    ("DATE", re.compile(rf"\b{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b")),
    ("DATE", re.compile(r"\b\d{1,2}([-/.])\d{1,2}\1(?:\d{4}|\d{2})\b")),
    ("DATE", re.compile(rf"\b\d{{1,2}}-{_MONTH}-(?:\d{{4}}|\d{{2}})\b", _I)),
    (
        "DATE",
        re.compile(rf"\b{_DAY}{_ORD}\s+(?:of\s+)?{_MONTH}\.?(?:,?\s+(?:{_YEAR}|'\d{{2}}))?\b", _I),
    ),
    ("DATE", re.compile(rf"\b{_MONTH}\.?\s+{_DAY}{_ORD}(?:,?\s+{_YEAR})?\b(?!\s*(?:mm|cm|%))", _I)),
    ("DATE", re.compile(rf"\b{_MONTH}\.?,?\s+{_YEAR}\b", _I)),
    ("DATE", re.compile(rf"\b(?:0?[1-9]|1[0-2])[/-]{_YEAR}\b")),
    ("DATE", re.compile(rf"\b{_DATE_WORD}\s+(?P<phi>(?:0?[1-9]|1[0-2])/{_DAY})\b", _I)),
    ("DATE", re.compile(rf"{_BIRTH}\s*:?\s*(?:in\s+|on\s+)?(?P<phi>{_YEAR})\b", _I)),
    # Phones and extensions.
    (
        "PHONE",
        re.compile(
            r"(?:(?<![\w+])\+\d{1,3}[\s.-]?|\(\+?\d{1,3}\)\s?)?"
            r"(?:\(\d{2,5}\)\s?|(?<![\w.])\d{2,5})(?:[\s.-]\d{2,5}){1,4}(?![\w.]\d)"
        ),
    ),
    ("PHONE", re.compile(r"\b(?:ext\.?|extension)\s*[:#]?\s*\d{2,6}\b|(?<=\s)x\d{3,5}\b", _I)),
    # Ages of 90 and over.
    (
        "AGE",
        re.compile(
            r"\b(?:9\d|1[0-1]\d)\s*[- ]?\s*(?:years?|yrs?|yo|y/o|y\.o\.)(?:[- ]old)?\b|"
            r"\b(?:age|aged|is)\s(?P<phi>(?:9\d|1[0-1]\d))\b(?!\s*(?:%|mm|cm|kg|mg|ml|bpm|/))",
            _I,
        ),
    ),
    # Wards, beds, rooms; named wards; street addresses.
    (
        "LOCATION",
        re.compile(
            r"\b(?:ward|bed|bay|room|rm|cubicle|station|stn|zimmer|unit|floor|cot)\s*"
            r"(?:no\.?|number|#)?\s*[:#]?\s*[A-Z]?\d+[A-Z]?(?:[-/]\d+[A-Z]?)?\b",
            _I,
        ),
    ),
    ("LOCATION", re.compile(r"\b(?:St\.?\s+)?[A-Z][a-z]+(?:'s)?\s+[Ww]ard\b(?:\s+\d+[A-Za-z]?\b)?")),
    ("LOCATION", re.compile(r"\b[A-Z]{3,}\s+WARD\b")),
    (
        "LOCATION",
        re.compile(
            r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|"
            r"Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Close|Crescent)\b\.?"
        ),
    ),
    # Institutions.
    (
        "INSTITUTION",
        re.compile(
            r"\b(?:St\.?|Saint)\s+[A-Z][a-z]+(?:'s)?(?:\s+(?:Hospital|Medical Cent(?:er|re)|"
            r"Clinic|Infirmary|General|Health))?\b"
        ),
    ),
    ("INSTITUTION", re.compile(r"\b[A-Z][a-z]{2,}\s+General\b")),
    (
        "INSTITUTION",
        re.compile(
            r"\b(?:[A-Z][\w'&-]+\s+){1,4}(?:Hospital|Medical Cent(?:er|re)|Clinic|Infirmary|"
            r"Health System|Healthcare|Cancer Cent(?:er|re))\b"
        ),
    ),
]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_GAP = re.compile(r"[ \t]*,?[ \t]*(?=[A-Za-z])")
_DICOM_PN = re.compile(r"(?<![\w^])[A-Za-z][A-Za-z' -]*\^[A-Za-z' .^-]*[A-Za-z.]")
#: A title or relation, then a name (of any list, or any capitalised word).
_STRONG_CUE = re.compile(
    r"\b(?:mr|mrs|ms|miss|mx|dr|prof|professor|sr|sister|brother|nurse|rev|father|mother|mom|"
    r"mum|dad|son|daughter|wife|husband|aunt|uncle|niece|nephew|grandson|granddaughter|"
    r"grandmother|grandfather|grandma|grandpa|partner|spouse|fianc[eé]e?|guardian|carer|"
    r"caregiver|friend|neighbou?r|cousin|nok|next of kin|relative|"
    r"named|called|call me|nickname(?: is)?|aka|known as|goes by|name(?: is)?|"
    r"(?:patient|pt)(?:'s)? name(?: is)?)\b\.?\s*[:(]?\s*",
    _I,
)
#: A label naming the patient, then a name.
_LABEL_CUE = re.compile(r"\b(?:patient|pt|name|re|attn|nok)\s*:\s*", _I)
#: Weaker cues: the next word is a name only if a name list knows it.
_WEAK_CUE = re.compile(
    r"\b(?:for|with|by|per|re|ref|referred by|ordered by|seen by|does|did|is|has|discharge|"
    r"discharging|patient|pt|(?:patient|pt) is)\s+",
    _I,
)


def _is_cap(word: str) -> bool:
    return word[:1].isupper()


def _bare(word: str) -> str:
    word = word.replace("’", "'")
    if word.lower().endswith("'s"):
        word = word[:-2]
    return word.strip("'-")


def _tokens(text: str, start: int, limit: int = 4) -> Iterator[re.Match[str]]:
    """Word tokens from ``start``, allowing commas, spaces and initials in between."""
    pos = start
    for _ in range(limit):
        m = _GAP.match(text, pos)
        if m is None:
            return
        tok = _TOKEN.match(text, m.end())
        if tok is None:
            return
        yield tok
        pos = tok.end()


def _name_word(bare: str, *, cue: str) -> bool:
    """Whether ``bare`` can start a name after a cue of strength ``cue``."""
    low = bare.lower()
    if low in FUNCTION_WORDS:
        return False
    listed = low in FIRST_NAMES or low in SURNAMES
    if cue == "strong":
        return listed or (_is_cap(bare) and low not in NEVER_NAMES)
    if cue == "label":
        return listed or low not in NEVER_NAMES
    # weak
    return listed and (_is_cap(bare) or low not in AMBIGUOUS) and low not in CLINICAL_WORDS


def _eponym(text: str, end: int) -> bool:
    """Whether the word after ``end`` makes the name before it an eponym ("Kerley B lines")."""
    after = re.findall(r"[a-z]+", text[end : end + 24].lower())
    return bool(after) and (
        after[0] in EPONYM_NOUNS or (len(after) > 1 and len(after[0]) == 1 and after[1] in EPONYM_NOUNS)
    )


def _extend(text: str, first: re.Match[str], cue: str) -> tuple[int, int] | None:
    """The span of a name starting at token ``first``, with the surname or initials after it."""
    head = _bare(first.group(0))
    if len(head) == 1 or not _name_word(head, cue=cue) or _eponym(text, first.end()):
        return None  # a lone initial is not a name; "Hampton hump" is not a person
    end = first.start() + len(head)
    for tok in _tokens(text, first.end(), limit=3):
        word = _bare(tok.group(0))
        low = word.lower()
        if _eponym(text, tok.end()):
            break
        same_case = word.isupper() == head.isupper() and _is_cap(word) == _is_cap(head)
        if len(word) == 1:
            accepted = word.isupper()
        elif low in NEVER_NAMES:
            accepted = False
        else:
            accepted = low in SURNAMES or low in FIRST_NAMES or same_case
        if not accepted:
            break
        end = tok.start() + len(word)
    return first.start(), end


def _names(text: str) -> Iterator[Span]:
    for m in _DICOM_PN.finditer(text):
        yield Span(m.start(), m.end(), "NAME")
    for cue_re, strength in ((_STRONG_CUE, "strong"), (_LABEL_CUE, "label"), (_WEAK_CUE, "weak")):
        for cue in cue_re.finditer(text):
            tok = _TOKEN.match(text, cue.end())
            if tok is None:
                continue
            span = _extend(text, tok, strength)
            if span is not None:
                yield Span(span[0], span[1], "NAME")
    # Names from the lists without a cue.
    for tok in _TOKEN.finditer(text):
        word = _bare(tok.group(0))
        low = word.lower()
        if len(low) < 3 or low in AMBIGUOUS or low in NEVER_NAMES:
            continue
        eponym = _eponym(text, tok.end())
        if low in FIRST_NAMES and (_is_cap(word) or low not in SURNAMES):
            span = _extend(text, tok, "strong")
            if span is not None:
                yield Span(span[0], span[1], "NAME")
        elif low in SURNAMES and _is_cap(word) and not eponym:
            yield Span(tok.start(), tok.start() + len(word), "NAME")


def _phone_like(match: str) -> bool:
    digits = sum(c.isdigit() for c in match)
    return 7 <= digits <= 15 or (not match[:1].isdigit() and not match.startswith(("(", "+")))


def find_phi(text: str) -> list[Span]:
    """Identifier spans in ``text``, sorted and merged (an earlier rule wins an overlap)."""
    found: list[Span] = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span("phi") if m.groupdict().get("phi") is not None else m.span()
            if end > start and (kind != "PHONE" or _phone_like(m.group(0))):
                found.append(Span(start, end, kind))
    found.extend(_names(text))
    return _merge(found)


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if out and span.start < out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, span.end), last.kind)
        else:
            out.append(span)
    return out


def deidentify(text: str, spans: list[Span] | None = None) -> str:
    """``text`` with every identifier replaced by its kind in brackets (``[DATE]``...)."""
    spans = find_phi(text) if spans is None else spans
    parts, pos = [], 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(f"[{span.kind}]")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def nicknames_of(first_name: str) -> tuple[str, ...]:
    """Common short forms of a first name ("Jennifer" -> jen, jenn, jenny)."""
    return NICKNAMES.get(first_name.strip().lower(), ())
