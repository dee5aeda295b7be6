"""Nickname and diminutive forms of a given name ("ZEBEDIAH" -> Zeb, Zebby).

Three sources, merged:

1. The ``nicknames`` package (carltonnorthern/nicknames, Apache-2.0: a hand-curated CSV of
   about 1,100 English given names and their nicknames) when it is installed.
2. :data:`EXTRA_NICKNAMES`, a compact table that works without it: the common English
   diminutives of :data:`copilot.text.names.NICKNAMES` (from the US Census 1990 first-name
   list, public domain) plus forms the package lacks (Zebediah -> Zeb, Zebby; William -> Liam).
3. Two rules for names no table knows: a prefix of the given name of three letters or more
   ("Zeb", "Chris"), and such a prefix with a diminutive ending, its last consonant doubled or
   not ("Zebby", "Jonny", "Debbie", "Timo").

A form found by the tables is returned by :func:`nickname_forms`; the rules are asked per
token by :func:`is_short_form`. Whether a form that is also an English word ("Will", "Bill")
may be redacted where it stands is decided by :mod:`copilot.text.patient_names`.
"""

from __future__ import annotations

import importlib
import logging
import re
from functools import lru_cache

from copilot.text.names import NICKNAMES

__all__ = ["EXTRA_NICKNAMES", "is_short_form", "nickname_forms"]

log = logging.getLogger(__name__)

#: Given name -> nicknames the ``nicknames`` package does not have (or that must work without it).
EXTRA_NICKNAMES: dict[str, tuple[str, ...]] = {
    **NICKNAMES,
    "zebediah": ("zeb", "zebby", "zebbie", "zebedee"),
    "zebedee": ("zeb", "zebby", "zebbie"),
    "william": ("will", "bill", "billy", "willy", "willie", "liam", "wills"),
    "elizabeth": ("liz", "lizzie", "lizzy", "beth", "betty", "bess", "bessie", "eliza", "libby", "betsy"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert", "robin"),
    "margaret": ("maggie", "meg", "peggy", "peg", "marge", "madge", "greta", "margie", "daisy"),
    "catherine": ("cathy", "cath", "kate", "katie", "kay", "kitty", "cat"),
    "christine": ("chris", "chrissie", "tina"),
    "edmund": ("ed", "eddie", "ned", "ted"),
    "henrietta": ("etta", "hetty", "hattie", "henny"),
    "jacqueline": ("jackie", "jacqui"),
    "josephine": ("jo", "josie", "jojo"),
    "penelope": ("penny", "pen"),
    "alexandra": ("alex", "lexi", "sandra", "sandy", "ali"),
    "augustus": ("gus", "gussie"),
    "bartholomew": ("bart", "barty", "mew"),
    "cornelius": ("neil", "con", "corny"),
    "ezekiel": ("zeke",),
    "jeremiah": ("jerry", "jem"),
    "obadiah": ("obie", "obed"),
    "hezekiah": ("hez", "kiah"),
}

#: Endings that make a diminutive of a name's first syllables (Zeb -> Zebby).
DIMINUTIVE_ENDINGS = ("y", "ie", "ey", "i", "o", "s", "sy")
#: Shortest prefix of a given name taken as a short form of it.
MIN_PREFIX = 3


@lru_cache(maxsize=1)
def _package_table() -> dict[str, frozenset[str]]:
    """The ``nicknames`` package's table (given name -> nicknames), or {} without it."""
    try:
        module = importlib.import_module("nicknames")
        table = module.NickNamer().nickname_lookup
    except Exception as exc:  # not installed, or a version with another API: the built-in table
        log.debug("nicknames package not used: %s", exc)
        return {}
    return {str(k).lower(): frozenset(str(v).lower() for v in vs) for k, vs in table.items()}


@lru_cache(maxsize=4096)
def nickname_forms(given: str) -> frozenset[str]:
    """Lower-case nicknames of a given name from the tables ("robert" -> bob, rob, bobby...)."""
    key = given.strip().lower()
    if not key:
        return frozenset()
    return frozenset(EXTRA_NICKNAMES.get(key, ())) | _package_table().get(key, frozenset())


_VOWELS = set("aeiou")


def is_short_form(token: str, given: str) -> bool:
    """True when ``token`` is a short form of ``given`` by rule: a prefix of three letters or
    more that is shorter than the name ("Zeb" of Zebediah), or such a prefix with a diminutive
    ending ("Zebby", "Jonny", "Debbie"). Case is ignored; the tables are not consulted."""
    tok, name = token.lower(), given.lower()
    if not re.fullmatch(r"[a-z]+", tok) or len(name) <= MIN_PREFIX or tok == name:
        return False
    if len(tok) >= MIN_PREFIX and name.startswith(tok):
        return True
    for ending in DIMINUTIVE_ENDINGS:
        if not tok.endswith(ending):
            continue
        stem = tok[: -len(ending)]
        if len(stem) >= MIN_PREFIX + 1 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
            stem = stem[:-1]  # Zebb-y -> Zeb
        if len(stem) >= MIN_PREFIX and name.startswith(stem) and len(stem) < len(name):
            return True
    return False
