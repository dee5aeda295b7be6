"""What the MCP server's tools do: list studies, run one expert on one study, answer a question.

Each returns the JSON an MCP client receives as structured content, de-identified through the
study's :class:`~copilot.text.redact.Redactor` (see :mod:`copilot.mcp_server.studies`), with
files as ``copilot://artifacts/...`` URIs, never paths. One study per call; nothing is written
into a study source and nothing is sent to a PACS (no tool here pushes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError, ToolError
from copilot.schema.results import ToolResult

if TYPE_CHECKING:
    from copilot.mcp_server.studies import StudyDesk
    from copilot.schema.answer import PriorUsed
    from copilot.study.model import InstanceRecord, Study
    from copilot.tools.contract import Tool

__all__ = ["answer_question", "list_studies", "run_tool", "scrub"]

log = logging.getLogger(__name__)


#: Keys whose values are ours, not text about the patient: kept as they are.
OWN_KEYS = frozenset({"uri", "study", "study_uid", "thread_id", "tool", "name", "status", "kind", "section"})


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (JSON) with every string passed through ``redact``, but keys and the values of
    :data:`OWN_KEYS` (a resource URI is not a path to remove)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: v if k in OWN_KEYS and isinstance(v, str) else scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, redact) for v in value]
    return value


def list_studies(
    desk: StudyDesk, patient: str | None, date: str | None, modality: str | None
) -> dict[str, Any]:
    """``{"studies": [rows]}`` for the filters of ``copilot studies`` (see StudyDesk.rows).
    The ``patient`` and ``date`` filters need ``--allow-identifiers``: otherwise a client could
    narrow a patient ID or a study date down by the rows each wildcard or range returns."""
    from copilot.study.query import StudyQuery

    refused = [name for name, value in (("patient", patient), ("date", date)) if value]
    if refused and not desk.allow_identifiers:
        raise CopilotError(
            f"the {' and '.join(refused)} filter{'s' if len(refused) > 1 else ''} of list_studies "
            "name patient identifiers: they need the server started with 'copilot mcp "
            "--allow-identifiers' (modality is always allowed)"
        )
    query = StudyQuery(patient=patient or None, date=date or None, modality=modality or None)
    return {"studies": desk.rows(query)}


def run_tool(
    desk: StudyDesk, tool: Tool, selector: str, question: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Run ``tool`` on the study ``selector`` names, on each image its manifest reads (the
    primary image when it declares no views), within the per-tool time limit, and word each
    result with the tool's own statements. Raises :class:`ToolError` (with the fix) when no read
    gave a result."""
    from copilot.routing.analysis import analyze
    from copilot.study.summary import study_summary
    from copilot.tools.results import checked_statements
    from copilot.tools.statements import Question

    studies, study = desk.select(selector)
    copilot = desk.copilot
    images = _images(tool, study)
    copilot.fetch([i for i in images if i is not None])
    analysis = analyze(question) if question.strip() else None
    words = Question(
        text=question,
        findings=analysis.findings if analysis else (),
        intents=tuple(analysis.intents) if analysis else (),
    )
    prior = _prior(tool, study, studies.studies)
    summary = study_summary(study)
    root = copilot.settings.artifacts_dir
    reads = []
    for instance in images:
        result = _timed(tool, instance, question, summary, options, prior, copilot.settings.tool_timeout_s)
        statements = checked_statements(tool.name, tool.statements(result, words)) if result.ok else []
        reads.append(
            {
                "view": getattr(instance, "view", None) or None,
                "result": _result_json(result, root),
                "statements": [s.model_dump(exclude_none=True) for s in statements],
            }
        )
    redact = desk.redactor(study)
    out = scrub({"tool": tool.name, "study": desk.name(study), "question": question, "reads": reads}, redact)
    if not any(r["result"]["status"] == "ok" for r in out["reads"]):
        first = out["reads"][0]["result"]
        fix = f" (fix: {first['fix']})" if first.get("fix") else ""
        raise ToolError(f"{tool.name} {first['status']}: {first.get('detail') or 'no result'}{fix}")
    return out


def answer_question(desk: StudyDesk, selector: str, question: str, thread: str | None) -> dict[str, Any]:
    """The composed, verified answer (``copilot ask --json``'s contract) with its statements,
    provenance, verification notes and artifacts, de-identified; the study named by its key."""
    studies, study = desk.select(selector)
    answer = desk.copilot.ask(studies, question, thread or None, study_uid=study.study_uid)
    root = desk.copilot.settings.artifacts_dir
    out: dict[str, Any] = dict(answer.to_contract())
    out["study_uid"] = desk.name(study)
    out.update(
        question=question,
        planner=answer.planner,
        statements=[s.model_dump(exclude_none=True) for s in answer.statements],
        provenance={n: p.model_dump() for n, p in answer.provenance.items()},
        verification=list(answer.verification),
        plan_notes=list(answer.plan_notes),
        artifacts=[_artifact_json(a.model_dump(exclude_none=True), root) for a in answer.artifacts],
    )
    if not desk.allow_identifiers:
        for finding in out["findings"]:
            finding.pop("image", None)  # a SOP Instance UID
    return dict(scrub(out, _answer_redactor(desk, studies.studies, study, answer.prior)))


def _answer_redactor(
    desk: StudyDesk, studies: list[Study], study: Study, prior: PriorUsed | None
) -> Callable[[str], str]:
    """The study's redactor followed by that of every other study of the same patient in the
    source (:func:`copilot.agents.prior_note.prior_redactor`): an answer may quote a prior's
    report, which names that study's accession number, institution, physicians and files. The
    prior the copilot compared with is taken opened (its files and reports known)."""
    from copilot.agents.prior_note import prior_redactor
    from copilot.errors import CopilotError
    from copilot.study.prior import PriorStudy, same_patient

    redact = desk.redactor(study)
    used = prior.study_uid if prior is not None else ""
    for other in studies:
        if other.study_uid == study.study_uid or not same_patient(study, other):
            continue
        if other.study_uid == used:
            try:
                other = desk.copilot.open_study(other)
            except CopilotError as exc:  # the listed study's identifiers still apply
                log.info("prior %s not opened for redaction: %s", other.study_uid, exc)
        redact = prior_redactor(redact, PriorStudy(study=other), desk.allow_identifiers)
    return redact


def _images(tool: Tool, study: Study) -> list[InstanceRecord | None]:
    """The images ``tool`` reads in ``study`` (None for a tool that reads no image)."""
    from copilot.study.views import images_for

    if not tool.manifest.needs_image:
        return [None]
    if tool.manifest.views:
        viewed = [v.instance for v in images_for(tool.manifest.views, study)]
        if viewed:
            return list(viewed)
    return [study.primary_instance()]


def _prior(tool: Tool, study: Study, others: list[Study]) -> Any:
    """The prior study for a comparison tool (None for any other tool)."""
    if "comparison" not in tool.manifest.intents:
        return None
    from copilot.study.prior import find_prior, same_patient

    return find_prior(
        study, tuple(o for o in others if o.study_uid != study.study_uid and same_patient(study, o))
    )


def _timed(
    tool: Tool,
    instance: InstanceRecord | None,
    question: str,
    summary: str,
    options: dict[str, Any],
    prior: Any,
    timeout: float,
) -> ToolResult:
    """``invoke`` within the per-tool time limit (an error result when it is exceeded)."""
    from copilot.runtime.deadline import call_with_timeout
    from copilot.tools.contract import ToolRequest
    from copilot.tools.invoke import invoke

    request = ToolRequest(
        question=question, instance=instance, study_summary=summary, options=options, prior_study=prior
    )
    finished, result = call_with_timeout(lambda: invoke(tool, request), timeout)
    if finished and result is not None:
        return result
    log.warning("%s timed out after %gs", tool.name, timeout)
    return ToolResult(tool=tool.name, status="error", detail=f"timed out after {timeout:g}s", seconds=timeout)


def _result_json(result: ToolResult, root: Any) -> dict[str, Any]:
    """A result's JSON with its files as resource URIs (files outside the artifacts folder left out)."""
    data = result.model_dump(exclude_none=True, exclude={"artifacts"})
    data["artifacts"] = [
        a
        for a in (_artifact_json(x.model_dump(exclude_none=True), root) for x in result.artifacts)
        if a.get("uri")
    ]
    return data


def _artifact_json(artifact: dict[str, Any], root: Any) -> dict[str, Any]:
    """An artifact's JSON: its ``path`` replaced by its ``uri`` (absent when not servable)."""
    from copilot.mcp_server.artifacts import uri_of

    uri = uri_of(str(artifact.pop("path", "")), root)
    return {**artifact, **({"uri": uri} if uri else {})}
