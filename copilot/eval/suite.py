"""Question suites: the documented formats ``copilot eval`` reads (docs/eval.md).

A suite is a JSON Lines file, one case per line (a JSON list of cases is accepted too). Image
paths are relative to the suite file's folder unless absolute. Nothing is downloaded: the user
points at their own copy of a benchmark, converted to this layout.

Kinds:

- ``choice``: multiple choice with images (the ReXVQA / ChestAgentBench layout): ``options``
  and the correct one in ``answer`` (its text). Options are shown shuffled with a fixed seed
  (:func:`shuffled_options`), because public answer keys are skewed towards some letters.
- ``yesno``: a closed question with ``answer`` "yes" or "no" and the ``finding`` it is about.
- ``side``: "Is the {finding} on the left or the right?", ``answer`` "left" or "right".
- ``open``: an open question with a reference ``answer`` (the VQA-RAD / SLAKE layout).
- ``routing``: a question and the tools it ``needs``; nothing is run but the planner.

Cases that share a ``pair`` id score together: a pair counts as right only when every case of
it is right (ProbMed's rule).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from copilot.errors import CopilotError

__all__ = ["Case", "CaseKind", "SuiteError", "load_suite", "shuffled_options", "write_suite"]

log = logging.getLogger(__name__)

CaseKind = Literal["choice", "yesno", "side", "open", "routing"]

#: The most cases one suite file may hold (a guard against a wrong file, not a benchmark limit).
MAX_CASES = 100_000


class SuiteError(CopilotError):
    """A suite file that cannot be read as a suite (with the line that is wrong)."""


class Case(BaseModel):
    """One question of a suite, with what scores it."""

    id: str = Field(min_length=1, max_length=200, description="Unique within the suite.")
    kind: CaseKind
    question: str = Field(min_length=1, max_length=4000)
    images: list[str] = Field(default_factory=list, description="Image files (DICOM, PNG, JPEG).")
    answer: str = Field(default="", description="The right answer: option text, yes/no, left/right.")
    options: list[str] = Field(default_factory=list, description="For ``choice``: the options' texts.")
    finding: str = Field(default="", description="For ``yesno`` and ``side``: the finding asked about.")
    needs: list[str] = Field(default_factory=list, description="For ``routing``: the tools it needs.")
    category: str = Field(default="", description="Reported separately on the scorecard.")
    pair: str = Field(default="", description="Cases sharing it score together (all or nothing).")

    @model_validator(mode="after")
    def _complete(self) -> Case:
        if self.kind == "choice" and (len(self.options) < 2 or self.answer not in self.options):
            raise ValueError("a choice case needs two or more options, one of them its answer")
        if self.kind == "yesno" and (self.answer not in ("yes", "no") or not self.finding):
            raise ValueError("a yesno case needs answer 'yes' or 'no' and the finding it asks about")
        if self.kind == "side" and (self.answer not in ("left", "right") or not self.finding):
            raise ValueError("a side case needs answer 'left' or 'right' and the finding it asks about")
        if self.kind == "routing" and not self.needs:
            raise ValueError("a routing case needs the tools it needs")
        if self.kind not in ("routing",) and not self.images:
            raise ValueError(f"a {self.kind} case needs at least one image")
        return self

    @property
    def scored_by_tools(self) -> bool:
        """Whether answering it runs the tools (every kind but ``routing``)."""
        return self.kind != "routing"


def shuffled_options(case: Case, seed: int) -> list[str]:
    """The case's options in the order shown, fixed by ``seed`` and the case id (the same for
    every run with that seed, different between cases)."""
    order = list(case.options)
    random.Random(f"{seed}:{case.id}").shuffle(order)
    return order


def _resolve(case: Case, folder: Path) -> Case:
    images = [str(p if (p := Path(image)).is_absolute() else (folder / p).resolve()) for image in case.images]
    return case.model_copy(update={"images": images})


def load_suite(path: Path) -> list[Case]:
    """The cases of the suite file ``path`` (JSON Lines, or a JSON list), image paths made
    absolute. Raises :class:`SuiteError` naming the first wrong line, a duplicate id, or a
    missing image."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read the suite {path}: {exc}") from exc
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            rows = [(i + 1, row) for i, row in enumerate(json.loads(stripped))]
        else:
            rows = [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path} is not JSON Lines (one case per line): {exc}") from exc
    if len(rows) > MAX_CASES:
        raise SuiteError(f"{path} holds {len(rows)} cases; at most {MAX_CASES} are read")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, row in rows:
        try:
            case = _resolve(Case.model_validate(row), path.parent)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "case"
            raise SuiteError(f"{path}, case {n}: {where}: {first['msg']}") from exc
        if case.id in seen:
            raise SuiteError(f"{path}, case {n}: the id {case.id!r} is used twice")
        missing = [image for image in case.images if not Path(image).is_file()]
        if missing:
            raise SuiteError(f"{path}, case {n}: image not found: {missing[0]}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise SuiteError(f"{path} holds no case")
    return cases


def write_suite(cases: list[Case], path: Path) -> Path:
    """Write ``cases`` as a JSON Lines suite at ``path`` (image paths as given)."""
    lines = [case.model_dump_json(exclude_defaults=True) for case in cases]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
