"""Regenerate ``copilot/text/radiology_words.py``: the radiology vocabulary of the redactor.

Folder names of a DICOM export ("Bone_Mediastinal_Recon", "Portable_Upright") and short forms
of a given name ("Mass" of MASSIMO) are identifiers only when they are not radiology words. The
vocabulary is the lower-case words (three letters or more) of what the repository and its
installed dependencies already hold:

- the concept names of pydicom's DICOM code dictionary (``pydicom.sr.codedict``: every CID of
  DCM, SNOMED CT and NCIt: anatomy, views, positions, modalities, findings, procedures), but
  the CIDs of breeds, racial groups and animal husbandry (place names: "Yorkshire", "Alaska");
- the knowledge-base cards (``copilot/kb/cards``);
- the routing vocabulary (``copilot.routing.lexicon``) and the report labeler's finding
  patterns and labels (``copilot.text.labeler``);
- the anatomy, finding and quantity codes of ``copilot.dicomout.codes``;
- DICOM defined terms (PS3.3: Modality, Body Part Examined, View Position, Patient Position)
  and the words of series descriptions scanners write (:data:`SERIES_TERMS`).

Words of pydicom's dictionary that are census names (``copilot.text.names``) are left out
unless the IU report corpus uses them (``CLINICAL_WORDS``: "mass"), so a name stays
redactable; the repository's own curated lists are taken whole ("bone"). The copilot
layers forbid ``copilot.text`` from importing these sources, hence a generated module
(``tests/test_redact_vocabulary.py`` checks it is current). Usage::

    python bench/radiology_words.py > copilot/text/radiology_words.py
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterable

#: PS3.3 C.7.3.1.1.1 Modality defined terms.
MODALITIES = """
    ann ar asmt au bdus bi bmd cr ct ctprotocol dg doc dx ecg eps es fid gm hc hd io iol ivoct
    ivus ker kor lab len lp ls mg mr m3d nm oam oct op opm opt optbsv optenf optenv oss ot pa
    plan pos pr pt px reg resp rf rg rtdose rtimage rtintent rtplan rtrad rtrecord rtsegann
    rtstruct rwv seg sm smr sr srf stain textureMap tg us va xa xaprotocol xc
"""
#: PS3.16 Annex L Body Part Examined and PS3.3 View Position / Patient Position terms, as words.
POSITIONS = """
    abdomen ankle breast chest clavicle coccyx cspine elbow extremity foot hand head heart hip
    jaw knee leg lspine neck pelvis shoulder skull spine sspine tspine wholebody chestabdomen
    abdomenpelvis headneck thorax lung lungs
    anterior posterior lateral left right oblique decubitus supine prone erect upright standing
    sitting recumbent semi-erect head first feet caudal cranial axial coronal sagittal transverse
    frontal apical lordotic inspiration expiration inspiratory expiratory portable mobile
"""
#: Words scanners and technologists write in series descriptions and export folder names.
SERIES_TERMS = """
    recon recons reconstruction reconstructions reformat reformats mpr mip minip vr vrt 3d 2d
    scout scouts topogram surview localizer localiser localizers localisers survey pilot tracker
    bolus dose report reports screen save secondary capture derived primary original key images
    axial coronal sagittal oblique thin thick slice slices kernel sharp smooth standard soft tissue
    bone bones lung lungs window windows mediastinal mediastinum brain stroke routine protocol
    contrast noncontrast non plain native pre post arterial venous portal delayed delay phase
    early late washout enhanced unenhanced perfusion angio angiogram angiography cta ctpa hrct
    iterative asir idose safire admire fbp final prelim preliminary draft addendum addenda
    expiration inspiration expiratory inspiratory supine prone decubitus erect upright portable
    frontal lateral view views series image images exam study studies scan scans
    pa ap lat lao rao lpo rpo ll rl rld lld ffs hfs ffp hfp hfdr hfdl ffdr ffdl
"""
#: CIDs that are no radiology vocabulary: breeds, racial groups, animal husbandry (place and
#: people names: "Yorkshire", "Alaska", "Pacific").
_NOT_CLINICAL = re.compile(r"Breed|RacialGroup|Animal(Room|Bedding|Shelter|Feed|Taxonomic)|AnimalSource")
#: Words of the code dictionary that name wards and rooms more often than anything a folder
#: above a study needs kept (colours, stains and nature words: "Red_Ward", "Butterfly_Unit"):
#: left out, so such a folder word is still redacted.
WARD_WORDS = frozenset(
    [
        "red",
        "orange",
        "yellow",
        "indigo",
        "purple",
        "pink",
        "white",
        "scarlet",
        "azure",
        "elm",
        "butterfly",
        "sky",
    ]
)
_WORD = re.compile(r"[a-z]{3,}")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _words(texts: Iterable[str]) -> set[str]:
    return {w for text in texts for w in _WORD.findall(text.lower())}


def _pattern_words(patterns: Iterable[str]) -> set[str]:
    """Literal words of regular expressions (``\\beffusions?\\b`` -> effusions)."""
    return _words(re.sub(r"\\[a-zA-Z]", " ", p) for p in patterns)


def vocabulary() -> frozenset[str]:
    """Every source's words (pydicom's less census names no report uses, see the docstring)."""
    from pydicom.sr import _cid_dict, _concepts_dict

    from copilot.dicomout import codes
    from copilot.kb.corpus import read_knowledge_cards
    from copilot.routing import lexicon
    from copilot.text.labeler import FINDING_PATTERNS
    from copilot.text.names import CLINICAL_WORDS, FIRST_NAMES, SURNAMES

    left_out = {cid for cid, name in _cid_dict.name_for_cid.items() if _NOT_CLINICAL.search(name)}
    concepts: set[str] = set()
    for schemes in _concepts_dict.concepts.values():
        for values in schemes.values():
            concepts |= _words(meaning for meaning, cids in values.values() if not set(cids) <= left_out)
    words = concepts - ((FIRST_NAMES | SURNAMES) - CLINICAL_WORDS)
    words |= _words(p.text for p in read_knowledge_cards())
    for table in (FINDING_PATTERNS, lexicon.EXTRA_FINDINGS, lexicon.SIGNS, lexicon.TERMS, lexicon.STRUCTURES):
        words |= _words(table)
        words |= _pattern_words(p for ps in table.values() for p in ps)
    words |= _words(codes._SCT_KEYWORDS) | _words(
        " ".join(_CAMEL.findall(v)) for v in codes._SCT_KEYWORDS.values()
    )
    words |= _words(meaning for _code, meaning in codes._SCT_TABLE.values())
    words |= _words(word for word, _code in codes._QUANTITIES)
    words |= _words([MODALITIES, POSITIONS, SERIES_TERMS])
    return frozenset(words - WARD_WORDS)


def render(words: frozenset[str]) -> str:
    """The generated module's source."""
    body = textwrap.fill(" ".join(sorted(words)), width=100, break_on_hyphens=False)
    return (
        '"""The radiology vocabulary of the redactor (generated by ``bench/radiology_words.py``; do\n'
        "not edit by hand): lower-case words of pydicom's DICOM code dictionary, the knowledge cards,\n"
        "the routing and labeler vocabularies, the SR codes, DICOM defined terms and series\n"
        "description terms, less census names no report uses. A folder word or a short form of a\n"
        'given name that is one of these is not taken for an identifier."""\n\n'
        "from __future__ import annotations\n\n"
        '__all__ = ["RADIOLOGY_WORDS"]\n\n\n'
        "def _words(text: str) -> frozenset[str]:\n"
        "    return frozenset(text.split())\n\n\n"
        "#: Lower-case radiology words (three letters or more).\n"
        f'RADIOLOGY_WORDS = _words(\n    """\n{body}\n"""\n)\n'
    )


if __name__ == "__main__":
    sys.stdout.write(render(vocabulary()))
