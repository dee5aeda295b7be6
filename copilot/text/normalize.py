"""Unicode folding for comparing claims: look-alike spellings read as what they look like.

A language model (or text it was shown) can spell a finding so that a pattern misses it while
a reader sees the word: ``pneumo\\u00adthorax`` (soft hyphen), ``pneumo\\u200bthorax``
(zero-width space), ``pneumоthorax`` (Cyrillic ``о``), ``ｐｎｅｕｍｏｔｈｏｒａｘ`` (full-width),
``pneumοthorax`` (Greek omicron), ``pneúmothorax`` (a combining accent), ``large\\u00a0pneumothorax``
(no-break space). Two forms are used:

- :func:`clean` is what may be shown: NFKC (full-width and mathematical letters, no-break and
  other Unicode spaces become plain ones), invisible characters removed (format characters such
  as the soft hyphen, zero-width space/joiner, word joiner, BOM and bidirectional controls;
  Hangul and Braille blanks; control characters).
- :func:`fold` is what is compared: :func:`clean`, then combining marks dropped (NFD), dashes
  unified, and letters of other scripts that look like Latin ones (Cyrillic, Greek, Armenian,
  small capitals, IPA) replaced by them, from the compact table below: the look-alikes of
  Unicode's confusables list (UTS #39) that can spell English words. It is for matching only:
  a word in another script comes out as nonsense, which matches nothing.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["LOOKALIKES", "clean", "fold"]

#: Non-Latin letters that render like a Latin letter (UTS #39 confusables, the spelling subset).
LOOKALIKES: dict[str, str] = {
    # Cyrillic
    **dict(zip("аеорсухіјѕԁһԛԝӏвмнткгпьи", "aeopcyxijsdhqwlbmhtkrnbu", strict=True)),
    **dict(zip("АВЕКМНОРСТХУІЈЅԚԜӀ", "ABEKMHOPCTXYIJSQWI", strict=True)),
    # Greek
    **dict(zip("αγεικνορτυχωϲϳ", "ayeikvoptuxwcj", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹ", "ABEZHIKMNOPTYXC", strict=True)),
    # Armenian
    **dict(zip("օսցհոյզ", "oughnjq", strict=True)),
    # small capitals and IPA letters
    **dict(zip("ᴀʙᴄᴅᴇɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdeghijklmnoprstuvwyz", strict=True)),
    **dict(zip("ɑɡıȷɩℓǀ", "agijill", strict=True)),
}

_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_TABLE = str.maketrans(LOOKALIKES)


def _visible(ch: str) -> str:
    cat = unicodedata.category(ch)
    if ch in "\n\t":
        return ch
    if cat in ("Cf", "Cc", "Cs", "Co") or ch in _BLANKS:
        return ""
    if cat == "Zs":
        return " "
    if cat in ("Zl", "Zp"):
        return "\n"
    return ch


def clean(text: str) -> str:
    """``text`` as it may be shown: NFKC, invisible characters removed, Unicode spaces plain."""
    text = unicodedata.normalize("NFKC", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(_visible(ch) for ch in text)


def fold(text: str) -> str:
    """``text`` as it is compared: :func:`clean`, combining marks dropped, look-alike letters
    of other scripts replaced by the Latin letters they look like, dashes made ``-``."""
    text = unicodedata.normalize("NFD", clean(text))
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me"))
    text = _DASHES.sub("-", text.translate(_TABLE))
    return unicodedata.normalize("NFC", text)
