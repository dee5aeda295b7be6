"""Running a suite through the real agent: the same graph, tools and composer as ``ask``.

Every case gets a fresh thread (no memory across cases) and its own study: the case's image
opened on its own. Each finished case is appended to ``answers.jsonl`` in the run's folder at
once (one line, flushed and synced), so a run killed midway resumes where it stopped: cases
already there are not asked again. The scorecard (``scorecard.json``) is made from every
recorded case. Image cases are asked a second time about a blank film of the same size
(:mod:`copilot.eval.controls`) unless controls are turned off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from copilot.errors import CopilotError
from copilot.eval.controls import blank_like, ignores_image
from copilot.eval.predict import Prediction, predict, predict_routing
from copilot.eval.scorecard import CaseRecord, Scorecard, score
from copilot.eval.suite import Case, shuffled_options

if TYPE_CHECKING:
    from copilot.api import Copilot
    from copilot.schema import Answer

__all__ = ["ANSWERS", "RUN", "SCORECARD", "EvalRun", "read_records", "suite_digest"]

log = logging.getLogger(__name__)

ANSWERS = "answers.jsonl"
SCORECARD = "scorecard.json"
RUN = "run.json"


def read_records(folder: Path) -> list[CaseRecord]:
    """The cases recorded in ``folder``'s answers file; a line cut short by a kill (the last
    one) is dropped, so its case is asked again."""
    path = folder / ANSWERS
    if not path.exists():
        return []
    records: list[CaseRecord] = []
    # Bytes cut mid-character by a kill are replaced, never fatal: that line is asked again.
    for n, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(CaseRecord.model_validate_json(line))
        except ValidationError:
            log.warning(
                "%s line %d is incomplete (the run was stopped while writing it): asked again", path, n
            )
    return records


def _cut_partial_line(path: Path) -> None:
    """Drop a last line left half-written by a kill, so the next record starts a line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _whole_pairs(cases: list[Case], limit: int | None) -> list[Case]:
    """The first ``limit`` cases, extended so no pair is cut in two (a pair scores whole)."""
    if limit is None or limit >= len(cases):
        return list(cases)
    chosen = cases[:limit]
    pairs = {c.pair for c in chosen if c.pair}
    return chosen + [c for c in cases[limit:] if c.pair and c.pair in pairs]


def suite_digest(cases: list[Case]) -> str:
    """A digest of the suite's cases (what was asked and how it scores)."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.model_dump_json().encode() + b"\n")
    return digest.hexdigest()


def _asked(case: Case, seed: int) -> str:
    """The question as the agent is asked it: a choice case with its options, shuffled."""
    if case.kind != "choice":
        return case.question
    shown = shuffled_options(case, seed)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return case.question + "\nOptions: " + "; ".join(f"{letters[i]}) {o}" for i, o in enumerate(shown))


class EvalRun:
    """One evaluation run of a suite into ``folder`` with ``copilot`` (its tools, LLM, server)."""

    def __init__(
        self,
        copilot: Copilot,
        folder: Path,
        *,
        seed: int = 0,
        controls: bool = True,
    ) -> None:
        """``seed`` fixes the options' order; ``controls`` asks image cases about a blank film
        too. The suite, these and the copilot's LLM, server and tools are recorded in
        ``run.json``: a run is only resumed with the same ones."""
        self.copilot = copilot
        self.folder = folder
        self.seed = seed
        self.controls = controls

    def _check_resume(self, cases: list[Case]) -> None:
        """Record the run's settings, or refuse to resume a run made with others."""
        made = {
            "llm": self.copilot.llm_spec,
            "server": self.copilot.server or "",
            "suite": suite_digest(cases),
            "seed": str(self.seed),
            "controls": str(self.controls),
            "tools": ",".join(sorted(self.copilot.tools)),
        }
        path = self.folder / RUN
        if path.exists():
            try:
                before = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CopilotError(f"{path} cannot be read ({exc}): choose another --out") from exc
            changed = sorted(k for k in set(before) | set(made) if before.get(k) != made.get(k))
            if changed:
                raise CopilotError(
                    f"{self.folder} holds a run made with another {', '.join(changed)}: resuming would mix "
                    "them; choose another --out"
                )
            return
        path.write_text(json.dumps(made, indent=2) + "\n", encoding="utf-8")

    def run(
        self,
        cases: list[Case],
        *,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Scorecard:
        """Ask every case not yet recorded (the first ``limit`` of the suite), then score all
        recorded cases of this suite and write the scorecard."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_resume(cases)
        chosen = _whole_pairs(cases, limit)
        _cut_partial_line(self.folder / ANSWERS)
        done = {r.id for r in read_records(self.folder)}
        todo = [c for c in chosen if c.id not in done]
        total = len(chosen)
        if progress:
            progress(total - len(todo), total)
        with (self.folder / ANSWERS).open("a", encoding="utf-8") as out:
            for case in todo:
                record = self.ask(case)
                out.write(record.model_dump_json() + "\n")
                out.flush()
                os.fsync(out.fileno())
                done.add(case.id)
                if progress:
                    progress(len(done & {c.id for c in chosen}), total)
        wanted = {c.id for c in chosen}
        card = score([r for r in read_records(self.folder) if r.id in wanted])
        (self.folder / SCORECARD).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return card

    def ask(self, case: Case) -> CaseRecord:
        """Run one case (a routing case: the planner only) and score it."""
        start = time.perf_counter()
        question = _asked(case, self.seed)
        record = CaseRecord(
            id=case.id,
            kind=case.kind,
            category=case.category,
            pair=case.pair,
            question=question,
            expected=case.answer or ", ".join(case.needs),
            prediction=Prediction(outcome="abstained"),
        )
        try:
            if case.kind == "routing":
                planned = list(self.copilot.plan(question).tools)
                update: dict[str, object] = {"plan": planned, "prediction": predict_routing(case, planned)}
            else:
                answer = self._answer(Path(case.images[0]), question)
                update = {
                    "plan": answer.plan,
                    "tools": answer.tools,
                    "findings": answer.findings,
                    "answer": answer.text,
                    "prediction": predict(case, answer),
                    "control": self._safe_control(case, question, answer),
                }
        except CopilotError as exc:
            log.warning("case %s could not be asked: %s", case.id, exc)
            update = {"prediction": Prediction(outcome="unavailable", why=str(exc)), "error": str(exc)}
        update["seconds"] = round(time.perf_counter() - start, 3)
        return record.model_copy(update=update)

    def _answer(self, image: Path, question: str) -> Answer:
        """``question`` about the study of ``image`` alone, in a fresh thread."""
        studies = self.copilot.open(image)
        if len(studies.studies) != 1:
            raise CopilotError(f"{image} holds {len(studies.studies)} studies; a case is about one")
        return self.copilot.ask(studies, question, f"eval-{uuid.uuid4().hex}")

    def _safe_control(self, case: Case, question: str, answer: Answer) -> bool | None:
        """The control, when on; a control that cannot run leaves the case scored, unjudged."""
        if not self.controls:
            return None
        try:
            return self._control(case, question, answer)
        except CopilotError as exc:
            log.warning("blank-image control of case %s not run: %s", case.id, exc)
            return None

    def _control(self, case: Case, question: str, answer: Answer) -> bool | None:
        """The blank-image control of an image case (None when no tool read the image)."""
        if not any(t.images and t.status == "ok" for t in answer.tools):
            return None
        blank = blank_like(Path(case.images[0]), self.folder / "controls")
        return ignores_image(answer, self._answer(blank, question))
