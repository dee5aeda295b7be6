"""One tool as a Ray Data stage: the callable class each actor of the tool's pool runs.

A stage receives Arrow batches of targets and returns them with one more column,
``result:<tool>``, holding each image's :class:`~copilot.tools.contract.ToolResult` as JSON.
The results of earlier stages the tool ``uses`` (and that are ok) are its requests' ``prior``,
and the image's prior study (column ``prior_study``, :func:`encode_prior`: the study's prior
among the folder's studies, chosen on the driver) its ``prior_study``, as in
``Copilot.analyze``; so are its time limit and its handling of a tool that hangs: after
one batch exceeds ``tool_timeout_s`` its later batches get error results and are not sent.

The tool is built once per actor from its class (``cls(settings)``, cheap by contract; the
weights load on the first batch), so the class must be importable where the actor runs.

Ray keeps each worker's output in its log files: in an actor, the folders of the images sent
to it (a study folder may be named after the patient) are replaced by ``<study folder>`` in
every log line (:class:`FolderRedaction`), and Python warnings go to the debug log, which the
actor does not keep.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.prior import PriorStudy
    from copilot.tools.contract import Tool, ToolResult

__all__ = [
    "PRIOR",
    "RECORD",
    "FolderRedaction",
    "ToolStage",
    "decode_prior",
    "decode_result",
    "encode_prior",
    "encode_result",
    "result_column",
]

log = logging.getLogger(__name__)

#: The column holding each target's InstanceRecord as JSON.
RECORD = "record"
#: The column holding each target's prior study as JSON ("" when none was chosen).
PRIOR = "prior_study"


def result_column(tool: str) -> str:
    """The column holding ``tool``'s results."""
    return f"result:{tool}"


def encode_result(result: ToolResult) -> str:
    """A result as JSON that decodes to an equal result (NaN and infinities kept)."""
    data = result.model_dump()
    try:
        return json.dumps(data, allow_nan=True)
    except TypeError:  # a value JSON cannot hold: pydantic's own encoding
        return result.model_dump_json()


def decode_result(text: str) -> ToolResult:
    """The result :func:`encode_result` encoded."""
    from copilot.tools.contract import ToolResult

    return ToolResult.model_validate(json.loads(text))


def encode_prior(prior: PriorStudy | None) -> str:
    """The prior as JSON for the object store: its chosen image (the fields that name the patient
    emptied, as for the targets), its date, description and stored results (a comparison tool
    reads the copilot's report of the prior); "" for None."""
    from copilot.remote.minimal import IDENTIFYING_FIELDS
    from copilot.study.model import Series, Study

    if prior is None:
        return ""
    if prior.study is None or prior.instance is None:
        return prior.model_dump_json()
    blank = {field: [] if field == "physicians" else "" for field in IDENTIFYING_FIELDS}
    image = prior.instance.model_copy(update=blank)
    study = Study(
        study_uid=prior.study.study_uid,
        study_date=prior.study.study_date,
        description=prior.study.description,
        series=[
            Series(series_uid=image.series_uid, modality=image.modality, view=image.view, instances=[image])
        ],
        results=list(prior.study.results),
    )
    return prior.model_copy(update={"study": study, "instance": image}).model_dump_json()


def decode_prior(text: str | None) -> PriorStudy | None:
    """The prior :func:`encode_prior` encoded (None for "")."""
    from copilot.study.prior import PriorStudy

    return PriorStudy.model_validate_json(text) if text else None


class FolderRedaction(logging.Filter):
    """Rewrites every log record so that none of the known folders appears in it (longest
    first, so a study folder inside another is replaced whole)."""

    MARK = "<study folder>"

    def __init__(self) -> None:
        super().__init__()
        self.folders: set[str] = set()

    def learn(self, paths: list[str]) -> None:
        """Remember the folders (and their parents up to the filesystem root's children) of
        ``paths``: a study folder may be any of them."""
        for path in paths:
            self.folders.add(path)  # a file may be named after the patient too
            folder = os.path.dirname(path)
            while folder and os.path.dirname(folder) not in ("", "/", folder):
                self.folders.add(folder)
                folder = os.path.dirname(folder)

    def redact(self, text: str) -> str:
        """``text`` with every known folder replaced by :attr:`MARK`."""
        for folder in sorted(self.folders, key=len, reverse=True):
            if folder in text:
                text = text.replace(folder, self.MARK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Format the message now, redacted (its arguments are dropped)."""
        if self.folders:
            record.msg = self.redact(record.getMessage())
            record.args = ()
            if record.exc_info:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def _private_worker_logging() -> FolderRedaction:
    """Redact folders from every handler of this worker; warnings to the (unkept) debug log."""
    redaction = FolderRedaction()
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setLevel(logging.WARNING)
        root.addHandler(stream)
    for handler in root.handlers:
        handler.addFilter(redaction)
    quiet = logging.getLogger("copilot.warnings")
    warnings.showwarning = lambda message, category, *_a, **_k: quiet.debug(
        "%s: %s", category.__name__, redaction.redact(str(message))
    )
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    return redaction


class ToolStage:
    """The ``map_batches`` callable of one tool (one instance per actor)."""

    def __init__(self, tool_class: type[Tool], settings: Settings, uses: tuple[str, ...]) -> None:
        self.redaction = _private_worker_logging()
        self.tool = tool_class(settings)
        self.settings = settings
        self.uses = uses
        self.hung: str | None = None

    def __call__(self, batch: Any) -> Any:
        """Run the tool on an Arrow batch; returns it with the tool's result column added."""
        from copilot.batch.shards import arrow
        from copilot.study.model import InstanceRecord
        from copilot.tools.contract import ToolRequest

        records = [InstanceRecord.model_validate_json(s) for s in batch.column(RECORD).to_pylist()]
        self.redaction.learn([r.path for r in records])
        earlier = {
            name: batch.column(result_column(name)).to_pylist()
            for name in self.uses
            if result_column(name) in batch.column_names
        }
        priors = batch.column(PRIOR).to_pylist() if PRIOR in batch.column_names else [""] * len(records)
        requests = []
        for i, record in enumerate(records):
            prior = {}
            for name, texts in earlier.items():
                result = decode_result(texts[i])
                if result.ok:
                    prior[name] = result
            requests.append(ToolRequest(instance=record, prior=prior, prior_study=decode_prior(priors[i])))
        encoded = [encode_result(r) for r in self._timed_batch(requests)]
        return batch.append_column(result_column(self.tool.name), arrow().array(encoded, arrow().string()))

    def _timed_batch(self, requests: list[Any]) -> list[ToolResult]:
        """``invoke_batch`` within the per-tool time limit; error results when it is exceeded."""
        from copilot.runtime.deadline import call_with_timeout
        from copilot.tools.contract import ToolResult
        from copilot.tools.invoke import invoke_batch

        name, timeout = self.tool.name, self.settings.tool_timeout_s
        if self.hung is not None:
            detail, seconds = f"not run: {name} {self.hung} on an earlier batch", 0.0
        else:
            done, results = call_with_timeout(lambda: invoke_batch(self.tool, requests), timeout)
            if done and results is not None:
                return results
            detail, seconds = f"timed out after {timeout:g}s", timeout
            self.hung = detail
            log.warning("%s %s; its remaining images are not sent to it", name, detail)
        return [ToolResult(tool=name, status="error", detail=detail, seconds=seconds) for _ in requests]
