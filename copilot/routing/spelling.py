"""Typos in the clinical words the router keys on, corrected by closeness ("pnuemothroax",
"efusion", "cardiomegally", "endotrachial").

Only words of :data:`VOCABULARY` are targets, only words of six letters or more that are not
already known are changed (to a word with the same first letter), and only when one target is
clearly closest (difflib's ratio at
least :data:`CUTOFF`). Plain English words are left alone: a word is known when it is in the
vocabulary, or a plural or inflection of a vocabulary word, or in :data:`COMMON`.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

__all__ = ["CUTOFF", "VOCABULARY", "correct"]

#: Least similarity (difflib ratio) for a word to be read as a vocabulary word.
CUTOFF = 0.88

#: The clinical words routing decisions hang on (findings, signs, anatomy, devices, technique).
VOCABULARY: frozenset[str] = frozenset(
    [
        "pneumothorax",
        "pneumonia",
        "effusion",
        "effusions",
        "cardiomegaly",
        "atelectasis",
        "consolidation",
        "opacity",
        "opacities",
        "nodule",
        "nodules",
        "infiltrate",
        "infiltrates",
        "infiltration",
        "emphysema",
        "edema",
        "fibrosis",
        "fracture",
        "fractures",
        "fractured",
        "mass",
        "masses",
        "lesion",
        "lesions",
        "pleural",
        "thickening",
        "hernia",
        "cardiomediastinum",
        "mediastinum",
        "mediastinal",
        "diaphragm",
        "hemidiaphragm",
        "costophrenic",
        "trachea",
        "tracheal",
        "esophagus",
        "esophageal",
        "hemorrhage",
        "hemothorax",
        "pneumomediastinum",
        "pneumoperitoneum",
        "subcutaneous",
        "calcification",
        "calcified",
        "granuloma",
        "lymphadenopathy",
        "hilar",
        "hilum",
        "pulmonary",
        "cardiac",
        "heart",
        "lungs",
        "clavicle",
        "clavicles",
        "scapula",
        "humerus",
        "vertebra",
        "vertebral",
        "sternum",
        "ribs",
        "skeleton",
        "bony",
        "osseous",
        "lytic",
        "sclerotic",
        "endotracheal",
        "nasogastric",
        "orogastric",
        "catheter",
        "catheters",
        "pacemaker",
        "tracheostomy",
        "sternotomy",
        "defibrillator",
        "intubated",
        "intubation",
        "drain",
        "stent",
        "device",
        "devices",
        "foreign",
        "metallic",
        "position",
        "positioned",
        "rotated",
        "rotation",
        "inspiration",
        "expiration",
        "exposure",
        "penetration",
        "collimation",
        "quality",
        "abnormal",
        "abnormality",
        "normal",
        "pathology",
        "diagnosis",
        "differential",
        "treatment",
        "management",
        "guideline",
        "guidelines",
        "recommendation",
        "symptoms",
        "cause",
        "causes",
        "enlarged",
        "enlargement",
        "cardiothoracic",
        "ratio",
        "measurement",
        "location",
        "bilateral",
        "unilateral",
        "interstitial",
        "reticular",
        "honeycombing",
        "bronchiectasis",
        "bronchogram",
        "bronchograms",
        "cavitation",
        "cavity",
        "abscess",
        "metastasis",
        "metastases",
        "tuberculosis",
        "aspiration",
        "congestion",
        "kerley",
        "aortic",
        "aorta",
        "aneurysm",
        "dissection",
        "scoliosis",
        "kyphosis",
        "pericardial",
        "loculated",
        "hyperinflation",
        "hyperinflated",
        "hyperlucency",
        "blunting",
        "blunted",
        "meniscus",
        "silhouette",
        "radiograph",
        "radiology",
        "report",
        "summarize",
        "summarise",
        "describe",
        "compare",
        "comparison",
        "previous",
        "interval",
        "opacification",
        "widened",
        "widening",
        "elevated",
        "elevation",
        "collapse",
        "collapsed",
        "lobe",
        "lobar",
        "lingula",
        "apical",
        "basal",
        "basilar",
        "retrocardiac",
        "perihilar",
        "peripheral",
        "periphery",
        "pleura",
        "hemithorax",
        "hemidiaphragmatic",
        "bibasilar",
        "loculation",
        "loculated",
        "lateral",
        "cavitary",
        "cavitating",
        "pathologic",
        "diagnostic",
        "internal",
        "malpositioned",
        "hyperlucent",
        "direction",
        "similar",
    ]
)

#: Everyday words near a vocabulary word that must stay as they are.
COMMON: frozenset[str] = frozenset(
    [
        "lesson",
        "lessons",
        "nodes",
        "notice",
        "posted",
        "positive",
        "possible",
        "possibly",
        "caused",
        "causing",
        "collar",
        "rations",
        "nation",
        "notation",
        "masses",
        "massive",
        "hearts",
        "earth",
        "heard",
        "hearted",
        "quantity",
        "equality",
        "diagnose",
        "diagnosed",
        "report",
        "reports",
        "reported",
        "previously",
        "compared",
        "compares",
        "comparing",
        "describes",
        "described",
        "locations",
        "located",
        "locate",
        "normally",
        "abnormally",
        "levels",
        "devise",
        "device",
        "advice",
        "advise",
        "deviation",
        "diagram",
        "diagrams",
        "partial",
        "portion",
        "potion",
        "motion",
        "emotion",
        "station",
        "rotate",
        "rotates",
        "inspirations",
    ]
)

_WORD = re.compile(r"[a-z]{6,}")


def _known(word: str) -> bool:
    if word in VOCABULARY or word in COMMON:
        return True
    for suffix in ("s", "es", "ed", "d", "ing", "al", "ly"):
        if word.endswith(suffix) and word[: -len(suffix)] in VOCABULARY:
            return True
    return False


@cache
def _fix(word: str) -> str:
    if _known(word):
        return word
    pool = [v for v in VOCABULARY if v[0] == word[0]]  # a typo seldom changes the first letter
    close = difflib.get_close_matches(word, pool, n=2, cutoff=CUTOFF)
    if not close:
        return word
    if len(close) == 2:
        first, second = (difflib.SequenceMatcher(None, word, c).ratio() for c in close)
        if first - second < 0.02:
            return word  # two words as close: leave it
    return close[0]


def correct(text: str) -> str:
    """``text`` (normalised) with misspelt vocabulary words corrected."""
    return _WORD.sub(lambda m: _fix(m.group(0)), text)
