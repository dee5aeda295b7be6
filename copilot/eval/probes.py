"""Paired probes built from labelled chest X-rays (the NIH ChestX-ray14 layout of
``shared/data/nih-cxr``: ``labels.csv``, ``boxes_512px.csv``, ``images/``).

For each image with a labelled finding the chest X-ray classifier knows:

- **presence pair**: "Is there {finding}?" (yes) with "Is there {other}?" (no) for a finding
  the image is not labelled with; the pair scores only when both are right (ProbMed's rule);
- **paraphrase pair**: the same presence question asked another way, both right to score;
- **side pair**, for a finding with a box: "Is the {finding} on the patient's left or right?"
  from the box's centre (radiological convention: the patient's right is the image's left),
  paired with the same question for a second box of the image when it has one.

Only the user's local copy is read; nothing is downloaded and no probe ships with the project.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from copilot.eval.suite import Case, SuiteError

__all__ = ["NIH_TO_LABEL", "nih_probes"]

#: NIH ChestX-ray14 label -> the classifier's finding label (display form). "Infiltrate" is
#: how the box list spells Infiltration.
NIH_TO_LABEL = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation",
    "Edema": "Edema",
    "Effusion": "Effusion",
    "Emphysema": "Emphysema",
    "Fibrosis": "Fibrosis",
    "Hernia": "Hernia",
    "Infiltration": "Infiltration",
    "Infiltrate": "Infiltration",
    "Mass": "Mass",
    "Nodule": "Nodule",
    "Pleural_Thickening": "Pleural thickening",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
}

#: How a finding is named in a question ("Is there {words}?").
_WORDS = {
    "Effusion": "a pleural effusion",
    "Mass": "a mass",
    "Nodule": "a nodule",
    "Hernia": "a hernia",
    "Pneumothorax": "a pneumothorax",
}

IMAGE_SIZE = 512  # the boxes' frame


def _words(label: str) -> str:
    return _WORDS.get(label, label.lower())


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of ``path``, which must have ``columns``; :class:`SuiteError` otherwise."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SuiteError(f"cannot read {path}: {exc}") from exc
    if missing:
        raise SuiteError(f"{path} lacks the column(s) {', '.join(missing)} (the NIH ChestX-ray14 layout)")
    return rows


def _box_side(path: Path, box: dict[str, str]) -> str:
    try:
        return _side(float(box["x"]), float(box["w"]))
    except ValueError as exc:
        raise SuiteError(f"{path}: a box of {box['Image Index']} has no numeric x and w: {exc}") from exc


def _side(x: float, w: float) -> str:
    """The patient's side of a box on a frontal film (the image's left is the patient's right)."""
    return "right" if x + w / 2 < IMAGE_SIZE / 2 else "left"


def _closed(
    stem: str, images: list[str], suffix: str, question: str, answer: str, label: str, category: str
) -> Case:
    """One yes/no probe of image ``stem``, paired with the others of its ``category``."""
    return Case(
        id=f"{stem}-{suffix}",
        kind="yesno",
        question=question,
        answer=answer,
        finding=label,
        category=category,
        pair=f"{stem}-{category}",
        images=images,
    )


def nih_probes(folder: Path, *, limit: int | None = None, seed: int = 0) -> list[Case]:
    """Paired probe cases for the images of ``folder`` (see the module docstring), at most
    ``limit`` images (the first in file order), the absent finding chosen with ``seed``."""
    labels = _read_csv(folder / "labels.csv", ("image", "labels"))
    boxes: dict[str, list[dict[str, str]]] = defaultdict(list)
    if (folder / "boxes_512px.csv").is_file():
        for row in _read_csv(folder / "boxes_512px.csv", ("Image Index", "Finding Label", "x", "w")):
            boxes[row["Image Index"]].append(row)
    known = sorted(set(NIH_TO_LABEL.values()))
    rng = random.Random(seed)
    cases: list[Case] = []
    used = 0
    for row in labels:
        present = [NIH_TO_LABEL[n] for n in row["labels"].split("|") if n in NIH_TO_LABEL]
        image = (folder / "images" / row["image"]).resolve()
        if not present or not image.is_file():
            continue
        if limit is not None and used >= limit:
            break
        used += 1
        stem = Path(row["image"]).stem
        finding = present[0]
        absent = rng.choice([label for label in known if label not in present])
        images = [str(image)]
        cases += [
            _closed(stem, images, "has", f"Is there {_words(finding)}?", "yes", finding, "presence"),
            _closed(stem, images, "not", f"Is there {_words(absent)}?", "no", absent, "presence"),
            _closed(
                stem,
                images,
                "has-paraphrase",
                f"Does this film show {_words(finding)}?",
                "yes",
                finding,
                "paraphrase",
            ),
            _closed(stem, images, "has-again", f"Is there {_words(finding)}?", "yes", finding, "paraphrase"),
        ]
        for n, box in enumerate(boxes.get(row["image"], [])[:2]):
            label = NIH_TO_LABEL.get(box["Finding Label"])
            if label is None:
                continue
            cases.append(
                Case(
                    id=f"{stem}-side-{n}",
                    kind="side",
                    question=f"Is the {label.lower()} on the patient's left or right?",
                    answer=_box_side(folder / "boxes_512px.csv", box),
                    finding=label,
                    category="side",
                    pair=f"{stem}-side",
                    images=images,
                )
            )
    return cases
