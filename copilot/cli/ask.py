"""``copilot ask`` and ``copilot plan``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from copilot.cli.common import EMBEDDED_NOTE, local_sources, make_copilot

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.table import Table

    from copilot.agents.planner import Planner
    from copilot.api import Copilot
    from copilot.schema import Answer
    from copilot.study.model import Study, StudySet
    from copilot.tools import Tool


def choose_study(studies: StudySet, key: str) -> Study:
    """The one study ``key`` names in an indexed folder (see
    :func:`copilot.study.selection.choose_study`)."""
    from copilot.study.selection import choose_study as choose

    return choose(studies, key)


def ask(
    path: str = typer.Argument(
        ..., help="Study folder (or file), or a DICOMweb base URL (http://host:8042/dicom-web); read-only."
    ),
    question: str = typer.Argument(..., help="The question, in plain language."),
    as_json: bool = typer.Option(False, "--json", help="Print the stable JSON contract."),
    llm: str = typer.Option(None, "--llm", help="LangChain model string, e.g. openai:gpt-4o-mini."),
    study: str = typer.Option(
        None,
        "--study",
        help="Study Instance UID, AccessionNumber or patient ID (a folder: also a UID prefix or a "
        "sub-folder name); a PACS is asked for that study only.",
    ),
    date: str = typer.Option(
        None, "--date", help="With --study PATIENT: the study of this date (YYYYMMDD, or a range)."
    ),
    thread: str = typer.Option(None, "--thread", help="Conversation id: follow-ups resume it."),
    server: str = typer.Option(
        None,
        "--server",
        help="A 'copilot serve' URL (http://host:8000) whose warm tools run the analysis; the image "
        "goes there without patient identifiers, the conversation stays here. Default: COPILOT_SERVER.",
    ),
    sr: Path = typer.Option(
        None,
        "--sr",
        help="Also make the answer a DICOM SR (TID 1500) for this file (not in the study): kept as a "
        "draft, written once a person approves it ('copilot drafts approve').",
    ),
    seg: Path = typer.Option(
        None,
        "--seg",
        help="Also make the anatomy masks a DICOM SEG for this folder (not the study): kept with the "
        "draft, written once a person approves it.",
    ),
    unreviewed: bool = typer.Option(
        False,
        "--unreviewed",
        help="With --sr/--seg: write them now, with no person's approval (research pipelines); the SR "
        "records that no person reviewed it.",
    ),
) -> None:
    """Answer a question about a study, with every statement traced to its tool."""
    from copilot.cli.output import progress_bar
    from copilot.schema import CopilotEvent, PlanMade, ToolFinished

    sources = local_sources(path)
    _preflight(sr, seg, sources)  # a refused destination fails before any work
    copilot = make_copilot(llm, server)
    if seg is not None and copilot.server:
        from copilot.errors import ServerError

        raise ServerError(
            "--seg writes the patient's identifiers into the DICOM SEG, and a server is sent none: "
            "write it without --server (or COPILOT_SERVER)"
        )
    studies, target = _select(path, study, date, copilot)
    with progress_bar("Fetching", enabled=not as_json) as progress:
        copilot.fetch(target, progress=progress)

    def trace(event: CopilotEvent) -> None:
        if as_json or not sys.stderr.isatty():
            return
        from copilot.cli.output import stderr

        if isinstance(event, PlanMade):
            stderr.print(f"[dim]plan: {', '.join(event.tools) or 'no tool'} ({event.planner})[/dim]")
        elif isinstance(event, ToolFinished):
            where = " on the prior image" if event.prior_image else ""
            stderr.print(f"[dim]{event.tool}{where}: {event.status} ({event.seconds:.1f}s)[/dim]")

    from copilot.cli.kb import stage_progress
    from copilot.kb.index import reporting_builds

    # The folder goes along so the answer knows the patient's other studies (e.g. a prior).
    # A tool that builds the knowledge index on first use draws its bar (nothing otherwise).
    first_use = "Building the knowledge index (first use only; 'copilot kb build' does it ahead)"
    request = None
    if (sr is not None or seg is not None) and not unreviewed:
        from copilot.drafts.model import DraftOutput
        from copilot.drafts.signing import DraftRequest

        kinds: tuple[tuple[DraftOutput, Path | None], ...] = (("sr", sr), ("seg", seg))
        wanted = [kind for kind, asked in kinds if asked is not None]
        request = DraftRequest(
            outputs=wanted,
            sr_path=str(sr) if sr is not None else None,
            seg_dir=str(seg) if seg is not None else None,
            sources=sources,
        )
    with stage_progress(enabled=not as_json, note=first_use) as building, reporting_builds(building):
        answer = copilot.ask(
            studies, question, thread, study_uid=target.study_uid, on_event=trace, draft=request
        )
    from copilot.errors import CopilotError

    try:  # the answer is printed whatever happens to the DICOM files; their failure is one line
        if request is not None:
            _draft_seg(copilot, answer, target, seg)
        else:
            _write_dicom(copilot, answer, target, sr, seg, sources)
        failed: CopilotError | None = None
    except CopilotError as exc:
        failed = exc
    _print_answer(answer, target, as_json)
    if failed is not None:
        raise failed
    if answer.draft:
        from copilot.cli.output import stderr

        stderr.print(
            f"draft {answer.draft} saved: nothing is written or sent until a person approves it; "
            f"review with 'copilot drafts show {answer.draft}', approve with "
            f"'copilot drafts approve {answer.draft} --by NAME'",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _draft_seg(copilot: Copilot, answer: Answer, study: Study, seg: Path | None) -> None:
    """The draft's SEG, made now into the draft's own folder (released on approval); when the
    answer could not be kept as a draft, or the SEG cannot be made, the one-line reason (a
    draft whose SEG failed is withdrawn: both or neither)."""
    from copilot.errors import CopilotError, DicomObjectError

    if answer.draft is None:
        raise DicomObjectError(f"{answer.draft_error} (no draft was kept; no DICOM file was written)")
    if seg is None:
        return
    try:
        write_seg(copilot, study, copilot.draft_store.seg_dir(answer.draft))
    except CopilotError as exc:
        copilot.reject(answer.draft, by="copilot", reason=f"no DICOM SEG: {exc}")
        raise DicomObjectError(
            f"{exc}; no DICOM SEG was written and no DICOM SR either: draft {answer.draft} was withdrawn "
            "(both or neither)"
        ) from exc


def _print_answer(answer: Answer, target: Study, as_json: bool) -> None:
    """The answer on stdout: one ``Study:`` line, the answer's sections, the tools (when any
    ran) and the thread id. On a terminal it is rendered (rich Markdown, a table); piped or
    redirected it is plain text: no padding, no trailing spaces, no identifier folded."""
    from copilot.cli.output import print_json, stdout
    from copilot.escape import escape_controls

    if as_json:
        print_json({**answer.to_contract(), **({"draft": answer.draft} if answer.draft else {})})
        return
    header = f"Study: {escape_controls(target.identity())}"
    body = escape_controls(without_study_block(answer.text), keep="\n\t")
    if not stdout.is_terminal:
        sys.stdout.write(plain_answer(header, body, answer) + "\n")
        sys.stdout.flush()
        return
    from rich.markdown import Markdown

    stdout.print(header, style="bold", markup=False, highlight=False)
    stdout.print(Markdown(body), soft_wrap=False)
    if answer.tools:
        stdout.print(_tools_table(answer))
    stdout.print(f"[dim]thread: {answer.thread_id} (continue with --thread {answer.thread_id})[/dim]")


def without_study_block(text: str) -> str:
    """The answer's Markdown without its leading ``**Study:**`` paragraph (the CLI prints one
    study line of its own above it)."""
    first, sep, rest = text.partition("\n\n")
    return rest if sep and first.startswith("**Study:**") else text


def plain_answer(header: str, body: str, answer: Answer) -> str:
    """The answer as plain text for a pipe or a file: Markdown emphasis removed, every line
    stripped of trailing spaces, nothing wrapped (a UID stays one word)."""
    from copilot.escape import escape_controls

    lines = [header, ""]
    for line in body.splitlines():
        bold = line.strip()
        if bold.startswith("**") and bold.endswith("**") and len(bold) > 4:
            line = bold[2:-2]
        elif bold.startswith("_") and bold.endswith("_") and len(bold) > 2:
            line = bold[1:-1]
        lines.append(line.replace("**", "").rstrip())
    if answer.tools:
        lines += ["", "Tools"]
        for t in answer.tools:
            fix = f"; fix: {t.fix}" if t.fix else ""
            detail = f": {t.detail}{fix}" if t.detail or fix else ""
            text = f"- {t.name}: {t.status} ({t.seconds:.2f} s){detail}"
            lines.append(escape_controls(text).rstrip())
    lines += ["", f"thread: {answer.thread_id} (continue with --thread {answer.thread_id})"]
    return "\n".join(lines)


def _tools_table(answer: Answer) -> Table:
    from rich.table import Table

    from copilot.cli.output import safe

    table = Table(title="Tools", title_justify="left")
    table.add_column("Tool", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Seconds", no_wrap=True)
    table.add_column("Detail / fix", overflow="fold")
    for t in answer.tools:
        detail = t.detail + (f"\nfix: {t.fix}" if t.fix else "")
        table.add_row(safe(t.name), safe(t.status), f"{t.seconds:.2f}", safe(detail))
    return table


def _select(path: str, key: str | None, date: str | None, copilot: Copilot) -> tuple[StudySet, Study]:
    """The studies and the one the question is about: ``--study`` asks the source for that
    study (a PACS: that study and its patient's others only); without it, the source's only
    study (a PACS lists study-level only, then opens that one)."""
    from copilot.study.query import StudyQuery
    from copilot.study.source import open_source

    source = open_source(path, copilot.settings)
    if key:
        return source.select(key, date=date)
    listed = source.list_studies(query=StudyQuery(date=date) if date else None)
    target = copilot.pick(listed)
    if target.opened:
        return listed, target
    return source.select(target.study_uid)


def _preflight(sr: Path | None, seg: Path | None, sources: list[str]) -> None:
    from copilot import outputs

    if sr is not None:
        outputs.preflight(sr, sources=sources)
    if seg is not None:
        outputs.check_folder(seg, sources=sources)


def _write_dicom(
    copilot: Copilot, answer: Answer, study: Study, sr: Path | None, seg: Path | None, sources: list[str]
) -> None:
    """Write the SR and SEG asked for with --sr and --seg ``--unreviewed``, both or neither;
    one line each on stderr. The SR records that no person reviewed it. It is built (and
    checked) in memory first; then the SEG is built, checked and written; only then is the SR
    written, and if that fails the new SEG is removed. A failure raises with the reason and
    that nothing was written."""
    from copilot.cli.output import stderr
    from copilot.errors import CopilotError, DicomObjectError
    from copilot.escape import escape_controls

    report = None
    if sr is not None:
        from copilot.dicomout.signoff import SignOff
        from copilot.dicomout.sr import build_sr, encode_sr

        try:
            report = encode_sr(
                build_sr(answer, study, SignOff.unreviewed_by_choice(answer.text, answer.text))
            )
        except CopilotError as exc:
            raise DicomObjectError(f"{exc} (no DICOM file was written)") from exc
    seg_path = None
    if seg is not None:
        try:
            seg_path = write_seg(copilot, study, seg)
        except CopilotError as exc:
            also = " and no DICOM SR either (both or neither)" if sr is not None else ""
            raise DicomObjectError(f"{exc}; no DICOM SEG was written{also}") from exc
    if sr is not None and report is not None:
        from copilot import outputs

        try:
            written = outputs.write_bytes(
                sr, report, sources=[*sources, *(i.path for i in study.instances())]
            )
        except CopilotError as exc:
            if seg_path is not None:
                seg_path.unlink(missing_ok=True)
            raise DicomObjectError(f"{exc}; the DICOM SEG was removed (both or neither)") from exc
        stderr.print(
            f"DICOM SR written: {escape_controls(str(written))} (unreviewed: no person approved it)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if seg_path is not None:
        stderr.print(f"DICOM SEG written: {escape_controls(str(seg_path))}", markup=False, highlight=False)


SEG_TOOL = "lesion_segmenter"


def write_seg(copilot: Copilot, study: Study, folder: Path) -> Path:
    """Run the segmenter on the study's primary image with DICOM SEG export into ``folder``;
    raises :class:`DicomObjectError` with the tool's reason (and fix) when it cannot."""
    from copilot.errors import DicomObjectError
    from copilot.tools.contract import ToolRequest
    from copilot.tools.invoke import invoke

    tool = copilot.tools.get(SEG_TOOL)
    if tool is None:
        raise DicomObjectError(f"cannot write a DICOM SEG: the {SEG_TOOL} tool is not installed")
    result = invoke(tool, ToolRequest(instance=study.primary_instance(), options={"seg_out": str(folder)}))
    written = [a.path for a in result.artifacts if a.kind == "seg"]
    if not result.ok or not written:
        fix = f" (fix: {result.fix})" if result.fix else ""
        raise DicomObjectError(f"cannot write a DICOM SEG: {SEG_TOOL} {result.status}: {result.detail}{fix}")
    return Path(written[0])


def _planner(llm: str | None) -> tuple[Planner, Mapping[str, Tool]]:
    """(planner, tools) for ``copilot plan``. The embedded planner needs only the tools'
    manifests and the routing model: no study stack, no LangGraph, no model framework."""
    from copilot.config import get_settings

    settings = get_settings()
    if llm is not None or settings.llm is not None:
        copilot = make_copilot(llm)
        return copilot.planner, copilot.tools
    from copilot.agents.planner import EmbeddedPlanner
    from copilot.cli.hints import hint_once
    from copilot.tools.discovery import create_tools

    hint_once("embedded-planner", EMBEDDED_NOTE, settings.data_dir)
    return EmbeddedPlanner(settings), create_tools(settings)


def plan(
    question: str = typer.Argument(..., help="The question, or - to read one per line from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    llm: str = typer.Option(None, "--llm", help="LangChain model string."),
) -> None:
    """The tools a question needs (the planner loads once for '-' input)."""
    from copilot.config import get_settings
    from copilot.escape import dumps
    from copilot.text.redact import Redactor

    planner, tools = _planner(llm)
    redact = Redactor(trusted=get_settings().llm_trusted)  # what an LLM planner is sent, as in ask
    questions = [q.strip() for q in sys.stdin] if question == "-" else [question]
    for q in questions:
        if not q:
            continue
        result = planner.plan(q, tools, redact=redact)
        if as_json or question == "-":
            sys.stdout.write(dumps(result.to_contract()) + "\n")
        else:
            sys.stdout.write(f"tools: {', '.join(result.tools) or '(none)'} (planner: {result.planner})\n")
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("ask")(ask)
    app.command("plan")(plan)
