"""What a question part names: findings, signs of findings, other findings, anatomy, regions.

The routing model decides *what kind* of question a part is (its intents); this module finds
*what it is about*, with exact word lists:

- ``findings``: finding labels of the report labeler's vocabulary named directly, in report or
  lay wording ("pneumothorax", "air in the pleural space", "big heart");
- ``signs``: labels reached through a radiological sign rather than named ("blunted costophrenic
  angle" -> Effusion, "hyperinflation" -> Emphysema): a tool scoring the label bears on the
  question, but only a generalist can answer it literally;
- ``terms``: findings outside that vocabulary ("free air", "tracheal deviation", "hilar
  lymphadenopathy");
- ``structures``: anatomy named (heart, lungs, trachea, diaphragm...);
- ``overall``: the part asks about normal/abnormal or "the pathology" in general;
- ``region``: it names a side, lobe, zone or other part of the chest;
- ``deictic``: it points at this image or patient ("this", "it", "seen", "the disease in the image");
- ``bones``: it asks about the skeleton (a fracture, a bony lesion): the classifier's fracture
  score bears on it, but only a generalist reads bones;
- ``devices``: it names a tube, line, catheter, implant or foreign body (exact words).

Which tool covers a label or term is not decided here: the planner matches these names against
the finding labels each tool's manifest declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from copilot.text.labeler import FINDING_PATTERNS, findings_in_question

__all__ = ["KNOWN_LABELS", "Mentions", "mentions"]

#: Wordings of labeler findings that the labeler itself does not know (question language).
EXTRA_FINDINGS: dict[str, tuple[str, ...]] = {
    "Fracture": (
        r"\b(?:ribs?|clavicles?|bones?|humerus|scapula|sternum|vertebra\w*)\b[\w' ]{0,20}\b(?:broken|"
        r"fractured)\b",
        r"\bbroken\b",
        r"\bfractured\b",
        r"\b(?:bon(?:e|y)|skeletal|osseous) (?:injur\w*|trauma|damage)\b",
    ),
    "Cardiomegaly": (
        r"\b(?:heart|cardiac (?:silhouette|shadow)|heart shadow)\b[\w' ]{0,25}\b(?:enlarged|big|large|larger|"
        r"dilated|wide|wider|too big|increased)\b",
        r"\b(?:enlarged|big|large|dilated) (?:heart|cardiac)\b",
        r"\bheart size\b",
        r"\bcardiac (?:enlargement|size)\b",
        r"\bheart failure\b",
    ),
    "Edema": (r"\bheart failure\b", r"\bfluid overload\b", r"\bpulmonary (?:o)?edema\b"),
    "Effusion": (r"\bfluid\b[\w ]{0,12}\b(?:lungs?|chest|pleura\w*|hemithorax)\b", r"\bhydrothorax\b"),
    "Pneumothorax": (r"\bcollapsed lung\b", r"\bair (?:in|around) the pleura"),
    "Pneumonia": (r"\bchest infection\b", r"\binfection\b"),
    "Lung opacity": (r"\bwhite[- ]?out\b", r"\bopacif\w*", r"\bradio-?opaque\b", r"\bshadowing\b"),
    "Mass": (r"\btumou?r\b", r"\bcancer\b"),
    "Nodule": (r"\bspot on the lung\b", r"\bcoin lesion\b"),
    "Infiltration": (r"\binfiltrat\w*",),
    "Lung lesion": (r"\bcavitat\w*",),
    "Atelectasis": (r"\bcollapsed? (?:lobe|segment)\b", r"\b(?:lobe|lung) (?:has )?collapsed\b"),
    "Enlarged cardiomediastinum": (r"\bmediastin\w* (?:is |are )?(?:wide|widened|enlarged)\b",),
}

#: Signs: wording -> the label the sign points at (a generalist answers the sign itself).
SIGNS: dict[str, tuple[str, ...]] = {
    "Effusion": (
        r"\bcostophrenic angles?\b",
        r"\bblunt\w*",
        r"\bmeniscus\b",
        r"\bh(?:a)?emothorax\b",
        r"\bempyema\b",
        r"\bchylothorax\b",
    ),
    "Emphysema": (
        r"\b(?:hyper-?|over-?|abnormally )inflat\w*",
        r"\bhyper-?expan\w*",
        r"\bflat(?:tened)? (?:hemi)?diaphragm",
        r"\bbullae?\b",
    ),
    "Edema": (
        r"\bkerley\b",
        r"\bb lines\b",
        r"\bvascular (?:markings|congestion)\b",
        r"\bcephali[sz]ation\b",
        r"\bseptal lines\b",
        r"\bbat ?wing\b",
    ),
    "Pneumothorax": (r"\blung markings\b", r"\bdeep sulcus\b", r"\bhyperlucen\w*"),
    "Consolidation": (r"\bair bronchogram\w*",),
    "Pneumonia": (r"\btb\b", r"\btubercul\w*", r"\baspiration\b", r"\bcovid\w*"),
    "Lung lesion": (r"\babscess\w*", r"\bmetasta\w*", r"\bpneumatocele\w*"),
    "Fibrosis": (r"\binterstitial\b", r"\breticula\w*", r"\bhoneycomb\w*"),
    "Lung opacity": (r"\bground[- ]glass\b", r"\bdensit(?:y|ies)\b", r"\bhazy\b|\bhaziness\b"),
    "Atelectasis": (r"\bvolume loss\b",),
    "Pleural thickening": (r"\bpleural plaques?\b", r"\bplaques?\b", r"\bpleura (?:is )?thick\w*"),
    "Nodule": (r"\bgranulomas?\b",),
}

#: Findings outside the labeler's vocabulary (canonical name -> wordings).
TERMS: dict[str, tuple[str, ...]] = {
    "free air": (
        r"\bfree (?:intraperitoneal )?air\b",
        r"\bpneumoperitoneum\b",
        r"\bsub-?diaphragm\w*",
        r"\b(?:air|gas)\b[\w' ]{0,20}\b(?:under|below|beneath)\b[\w' ]{0,20}diaphragm",
        r"\bair in the (?:abdomen|abdominal cavity)\b",
    ),
    "pneumomediastinum": (r"\bpneumomediastinum\b",),
    "mediastinal contour": (r"\bazygo\w*", r"\baortopulmonary\b", r"\bparatracheal\b"),
    "subcutaneous emphysema": (
        r"\b(?:subcutaneous|surgical) (?:emphysema|air)\b",
        r"\bair\b[\w ]{0,20}\bsubcutaneous\b",
    ),
    "tracheal deviation": (r"\btrache\w*",),
    "mediastinal shift": (r"\b(?:mediastinal|midline) shift\b", r"\bshift\w*\b"),
    "lymphadenopathy": (r"\b(?:lymph ?adenopathy|adenopathy|lymph nodes?)\b",),
    "hilar enlargement": (
        r"\bhil(?:um|a|ar|us)\b[\w ]{0,15}\b(?:enlarg\w*|prominen\w*|full\w*|normal|abnormal|symmetr\w*|"
        r"bulky)",
        r"\b(?:enlarg\w*|prominent|bulky|bilateral) hil(?:um|a|ar)\b",
        r"\bhil(?:um|a|ar)\b (?:enlargement|adenopathy|lymphadenopathy|mass)",
    ),
    "aortic abnormality": (r"\baort\w*", r"\baneurysm\w*", r"\bdissection\b", r"\bknob\b"),
    "calcification": (r"\bcalci\w*",),
    "air-fluid level": (r"\bair[- ]fluid levels?\b",),
    "cyst": (r"\bcyst\w*",),
    "loculation": (r"\bloculat\w*",),
    "tension": (r"\btension\b",),
    "pericardial effusion": (r"\bpericardial effusions?\b",),
    "dextrocardia": (r"\bdextrocardia\b", r"\bmirror image\b", r"\bbackwards\b", r"\bsitus\b"),
    "diaphragm abnormality": (
        r"\b(?:hemi)?diaphragms?\b[\w ]{0,20}\b(?:elevat\w*|raised|higher|high|flat\w*|obscur\w*|depress\w*|"
        r"visuali[sz]\w*|normal|abnormal|tent\w*|eventration)",
        r"\b(?:elevat\w*|raised|flat\w*|obscured) (?:of )?(?:the )?(?:right |left )?(?:hemi)?diaphragm",
    ),
    "pulmonary vessels": (r"\bpulmonary (?:arter\w*|vessels?|vasculature|trunk)\b", r"\bvascular\b"),
    "spine": (r"\bscoliosis\b", r"\bkyphosis\b", r"\bvertebra\w*", r"\bspin(?:e|al)\b"),
    "airway wall thickening": (r"\bairway walls?\b", r"\bbronchial wall\b", r"\btram-?track\w*"),
    "cavity": (r"\bcavit\w*",),
    "silhouette": (r"\bborders?\b", r"\bcontours?\b", r"\bmargins?\b"),
    "aeration": (r"\baeration\b", r"\blucen\w*"),
    "gastric": (r"\bgastric\b", r"\bstomach\b", r"\bbowel\b", r"\bcolon\b"),
    "soft tissue": (r"\bbreasts?\b", r"\bsoft[- ]tissues?\b", r"\bnipples?\b"),
    "bronchiectasis": (r"\bbronchiectasis\b",),
    "hemorrhage": (r"\bhemorrhag\w*", r"\bbleed\w*", r"\bhematoma\w*"),
    "esophagus": (r"\besophag\w*", r"\bachalasia\b"),
    "sarcoidosis": (r"\bsarcoid\w*",),
    "bone abnormality": (
        r"\blytic\b",
        r"\bsclerotic\b",
        r"\bosteo\w*",
        r"\bpectus\b",
        r"\bbony\b",
        r"\bosseous\b",
        r"\bdislocat\w*",
        r"\bbones? (?:lesions?|abnormalit\w*|destruction|metasta\w*|mets|tumou?rs?|density|densities)\b",
    ),
}

#: Anatomy (canonical -> wordings); the planner matches these against tools' declared structures.
STRUCTURES: dict[str, tuple[str, ...]] = {
    "heart": (r"\bheart\b", r"\bcardiac\b", r"\bcardio\w*"),
    "lungs": (r"\blungs?\b", r"\bpulmonary\b", r"\blung fields?\b", r"\bparenchyma\b"),
    "trachea": (r"\btrache\w*",),
    "diaphragm": (r"\b(?:hemi)?diaphragm\w*",),
    "aorta": (r"\baort\w*",),
    "hila": (r"\bhil(?:um|a|ar|us)\b",),
    "mediastinum": (r"\bmediastin\w*",),
    "clavicles": (r"\bclavic\w*",),
    "ribs": (r"\bribs?\b",),
    "esophagus": (r"\besophag\w*",),
    "spine": (r"\bspin(?:e|al)\b", r"\bvertebra\w*"),
    "thorax": (r"\bthora\w*", r"\bchest\b"),
    "bones": (r"\bbones?\b", r"\bskelet\w*", r"\bhumer\w*", r"\bscapula\w*"),
}

OVERALL = re.compile(
    r"\b(?:normal\w*|abnormal\w*|healthy|unhealthy|patholog\w*|diseases?|findings?|anything (?:wrong|"
    r"abnormal)|"
    r"wrong|clear|acute|unremarkable|affected|problem\w*|injur\w*|concerning|worr\w*|diagnos\w*)\b"
)
REGION = re.compile(
    r"\b(?:left|right|bilateral\w*|both (?:lungs|sides)|unilateral|upper|middle|mid|lower|apex|apices|apical|"
    r"base|bases|basal|bibasilar|basilar|lobes?|lingula\w*|zones?|hil(?:um|a|ar)|perihilar|retrocardiac|"
    r"periphery|peripheral|central|lateralized|side|sided)\b"
)
DEICTIC = re.compile(
    r"\b(?:this|these|that|those|it|its|here|seen|shown|visible|present|noted|the patient'?s?|"
    r"(?:in|on) (?:the|this) (?:image|picture|film|x-ray|radiograph|study))\b|"
    r"\bthe (?:disease|abnormality|pathology|lesions?|opacity|finding|effusion|nodule|mass|consolidation|"
    r"widening|widened|pneumothorax|cardiomegaly|collapse|blunting|organ)\b"
)
#: A tube, line, catheter, implant or foreign body named (exact words; "Kerley B lines" is not one).
DEVICES = re.compile(
    r"\b(?:tubes?|catheters?|pacemakers?|pacers?|intubat\w*|endotracheal|nasogastric|orogastric|drains?|"
    r"picc|stents?|devices?|hardware|foreign (?:bod\w*|objects?|materials?)|sternotomy|tracheostomy|"
    r"swan[- ]ganz|implant\w*|electrodes?|prosthe\w*|aicd|icd|defibrillator|metal\w*|objects?|bullets?|"
    r"needles?|coins?(?! lesion)|jewel\w*|batter(?:y|ies)|staples?|sutures?|surgical clips?|clips?|"
    r"wires?|pacemaker leads?|port-a-cath|valve replacement|prosthetic valves?|cerclage|ecmo|iabp|"
    r"balloon pump|chest drain|thoracostomy)\b|"
    r"\b(?:central|venous|arterial|picc|jugular|subclavian|femoral|umbilical|midline|hickman|dialysis|"
    r"support|tip of the) (?:lines?|catheters?)\b|\blines? (?:and|&) tubes?\b|\btubes? (?:and|&) lines?\b"
)
_BONY_LESION = re.compile(r"\b(?:bon(?:e|y)|osseous|lytic|sclerotic|skeletal|rib) lesions?\b")
PRONOUN = re.compile(r"\b(?:it|this|that|these|those|they|them|its)\b")

_EXTRA = {k: [re.compile(p) for p in v] for k, v in EXTRA_FINDINGS.items()}
#: Finding labels and other findings the lexicon recognises itself (lower case).
KNOWN_LABELS = frozenset(label.lower() for label in (*FINDING_PATTERNS, *EXTRA_FINDINGS, *SIGNS, *TERMS))
_SIGNS = {k: [re.compile(p) for p in v] for k, v in SIGNS.items()}
_TERMS = {k: [re.compile(p) for p in v] for k, v in TERMS.items()}
_STRUCT = {k: [re.compile(p) for p in v] for k, v in STRUCTURES.items()}
_NOT_EMPHYSEMA = re.compile(r"\b(?:subcutaneous|surgical) emphysema\b")
_BODY_CAVITY = re.compile(r"\b(?:abdominal|pelvic|pleural|thoracic|peritoneal|oral|nasal) cavit")
_NOT_EFFUSION = re.compile(r"\bpericardial effusions?\b")


@dataclass(frozen=True)
class Mentions:
    """What one question part names (see the module docstring)."""

    findings: tuple[str, ...] = ()
    signs: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()
    overall: bool = False
    region: bool = False
    deictic: bool = False
    pronoun: bool = False
    bones: bool = False
    devices: bool = False

    @property
    def named(self) -> bool:
        """True when the part names any finding, sign or other finding."""
        return bool(self.findings or self.signs or self.terms)


def _hits(table: dict[str, list[re.Pattern[str]]], text: str) -> list[str]:
    return [name for name, patterns in table.items() if any(p.search(text) for p in patterns)]


@cache
def mentions(part: str) -> Mentions:
    """The findings, signs, other findings, anatomy and region a normalised question part names."""
    findings = findings_in_question(part)
    if (
        "Emphysema" in findings
        and _NOT_EMPHYSEMA.search(part)
        and not re.search(r"(?<!subcutaneous )(?<!surgical )emphysema", part)
    ):
        findings.remove("Emphysema")
    if (
        "Effusion" in findings
        and _NOT_EFFUSION.search(part)
        and not re.search(r"(?<!pericardial )effusion", part)
    ):
        findings.remove("Effusion")
    if "Lung lesion" in findings and _BODY_CAVITY.search(part) and not re.search(r"\blesions?\b", part):
        findings.remove("Lung lesion")
    if "Lung lesion" in findings and _BONY_LESION.search(part) and not re.search(r"\blung lesions?\b", part):
        findings.remove("Lung lesion")  # a bony lesion is the skeleton's, not the lung's
    for label in _hits(_EXTRA, part):
        if label not in findings:
            findings.append(label)
    terms = _hits(_TERMS, part)
    if "tension" in terms and "Pneumothorax" not in findings:
        terms.remove("tension")
    if "cavity" in terms and "Lung lesion" in findings:
        terms.remove("cavity")  # the labeler maps cavities onto lung lesions
    signs = [label for label in _hits(_SIGNS, part) if label not in findings]
    if "free air" in terms or "subcutaneous emphysema" in terms:
        signs = [s for s in signs if s != "Pneumothorax"]
    return Mentions(
        findings=tuple(findings),
        signs=tuple(signs),
        terms=tuple(terms),
        structures=tuple(_hits(_STRUCT, part)),
        overall=bool(OVERALL.search(part)),
        region=bool(REGION.search(part)),
        deictic=bool(DEICTIC.search(part)),
        pronoun=bool(PRONOUN.search(part)),
        bones="Fracture" in findings or "bone abnormality" in terms,
        devices=bool(DEVICES.search(part)),
    )
