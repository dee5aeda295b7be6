"""The copilot as an MCP server (``copilot mcp``), on the official SDK's low-level ``Server``.

Tools offered (all read-only; none writes to a study source or sends anything to a PACS):

- ``list_studies`` (``patient``, ``date``, ``modality``: the filters of ``copilot studies``;
  ``patient`` and ``date`` only with ``--allow-identifiers``, since row counts would reveal
  them): de-identified rows, each with the study key the other tools take;
- ``ask`` (``study``, ``question``, ``thread``): the composed, verified answer, the JSON of
  ``copilot ask --json`` with its statements and provenance;
- one tool per installed expert tool, generated from its manifest (``study``, ``question`` and
  the manifest's own arguments): its typed result and worded statements per image read.

Files the tools write (heatmaps, masks, SEG) are resources under ``copilot://artifacts/``.
A failure is an MCP tool error (``isError``) whose text is the copilot's one-line message
with its fix, de-identified like every other answer.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from copilot.mcp_server.studies import StudyDesk
    from copilot.tools.contract import Tool

__all__ = ["OWN_TOOLS", "build_server", "error_text"]

log = logging.getLogger(__name__)

#: The server's own tools; an installed tool of the same name is not offered.
OWN_TOOLS = ("list_studies", "ask")

INSTRUCTIONS = (
    "A clinical imaging copilot over one folder or DICOMweb server of DICOM studies (read-only). "
    "Call list_studies, then ask about one study (by its key) or run one expert tool on it. "
    "Every statement names the tool and the number behind it; decision support only. Studies are "
    "shown de-identified. Nothing is written to the studies or sent to a PACS from here."
)

_STUDY = {
    "type": "string",
    "description": "The study: a key from list_studies (or a Study Instance UID, UID prefix, "
    "accession number, patient ID or sub-folder, as 'copilot ask --study' reads it).",
}


#: A DICOM UID (four or more dot-separated numbers): removed from what a client is told.
UID_PATTERN = re.compile(r"\b\d+(?:\.\d+){3,}\b")


def error_text(exc: BaseException, *, allow_identifiers: bool = False) -> str:
    """The one-line message of a failure, with its fix, as the CLI prints it, de-identified like
    every answer: paths always removed, and unless ``allow_identifiers`` the identifiers
    :class:`~copilot.text.redact.Redactor` finds and every UID (``[UID]``): an exception's text
    may carry Study Instance UIDs, URLs and file paths."""
    from copilot.text.redact import Redactor

    if isinstance(exc, CopilotError):
        fix = getattr(exc, "fix", None)
        text = str(exc) + (f" (fix: {fix})" if fix and fix not in str(exc) else "")
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    if not allow_identifiers:
        text = UID_PATTERN.sub("[UID]", text)
    text = Redactor(trusted=allow_identifiers)(text)
    return " ".join(text.split())


def tool_specs(tools: dict[str, Tool]) -> list[dict[str, Any]]:
    """Name, description and input schema of every MCP tool offered."""
    specs: list[dict[str, Any]] = [
        {
            "name": "list_studies",
            "description": "The studies of the folder or server, de-identified, each with the key "
            "the other tools take. Filters as in 'copilot studies'.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "patient": {
                        "type": "string",
                        "description": "Only this patient ID (wildcards * and ?); needs the server "
                        "started with --allow-identifiers.",
                    },
                    "date": {
                        "type": "string",
                        "description": "YYYYMMDD, YYYYMMDD-YYYYMMDD or A..B (ISO); needs the server "
                        "started with --allow-identifiers.",
                    },
                    "modality": {
                        "type": "string",
                        "description": "Only studies with this modality (DX, CT...).",
                    },
                },
            },
        },
        {
            "name": "ask",
            "description": "Answer a clinician's question about one study: the planner picks the "
            "expert tools, runs them and composes a verified answer in which every statement names "
            "its tool and number, with provenance. Continue a conversation with its thread_id.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "study": _STUDY,
                    "question": {"type": "string", "description": "The question, in plain language."},
                    "thread": {"type": "string", "description": "A thread_id to continue (same study)."},
                },
                "required": ["study", "question"],
            },
        },
    ]
    for name, tool in sorted(tools.items()):
        if name in OWN_TOOLS:
            log.warning("tool %r is not offered over MCP: the name is the server's own", name)
            continue
        m = tool.manifest
        own = {k: v for k, v in m.input_schema()["properties"].items() if k not in ("study", "question")}
        about = [m.description]
        if m.modalities:
            about.append(f"Reads {'/'.join(m.modalities)} images.")
        if m.labels:
            about.append(f"Labels: {', '.join(m.labels[:20])}.")
        specs.append(
            {
                "name": name,
                "description": " ".join(about),
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "study": _STUDY,
                        "question": {
                            "type": "string",
                            "description": "The question it is run for (optional).",
                        },
                        **own,
                    },
                    "required": ["study"],
                },
            }
        )
    return specs


def build_server(desk: StudyDesk) -> Server[Any]:
    """The MCP server over ``desk``'s studies and its copilot's tools."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from copilot._version import __version__
    from copilot.mcp_server import artifacts, runs

    tools = desk.copilot.tools
    specs = tool_specs(tools)
    root = desk.copilot.settings.artifacts_dir
    seen: dict[str, dict[str, Any]] = {}  # artifacts handed out in this session, by URI

    def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "list_studies":
            return runs.list_studies(desk, args.get("patient"), args.get("date"), args.get("modality"))
        if name == "ask":
            return runs.answer_question(
                desk, str(args.get("study", "")), str(args.get("question", "")), args.get("thread")
            )
        options = {k: v for k, v in args.items() if k not in ("study", "question")}
        return runs.run_tool(
            desk, tools[name], str(args.get("study", "")), str(args.get("question", "")), options
        )

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        read_only = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=s["name"],
                    description=s["description"],
                    input_schema=s["input_schema"],
                    annotations=read_only,
                )
                for s in specs
            ]
        )

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, args = params.name, dict(params.arguments or {})
        if not any(s["name"] == name for s in specs):
            return _error(types, f"unknown tool {name!r}; offered: {', '.join(s['name'] for s in specs)}")
        try:
            data = await anyio.to_thread.run_sync(lambda: call(name, args))
        except Exception as exc:  # every failure is the client's error result, never a crash
            if not isinstance(exc, CopilotError):
                log.exception("MCP tool %s failed", name)
            return _error(types, error_text(exc, allow_identifiers=desk.allow_identifiers))
        for item in _artifacts_in(data):
            seen[item["uri"]] = item
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=_readable(name, data))], structured_content=data
        )

    async def on_list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=uri,
                    name=uri.rsplit("/", 1)[-1],
                    description=item.get("description") or item.get("label") or None,
                    mime_type=item.get("media_type"),
                )
                for uri, item in seen.items()
            ]
        )

    async def on_list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name="artifact",
                    uri_template=artifacts.TEMPLATE,
                    description="A file a tool wrote (heatmap, mask, DICOM SEG), named by a result's 'uri'.",
                )
            ]
        )

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            data, media = artifacts.read_artifact(uri, root, handed_out=seen)
        except CopilotError as exc:
            from mcp.shared.exceptions import MCPError

            message = error_text(exc, allow_identifiers=desk.allow_identifiers)
            raise MCPError(code=types.INVALID_PARAMS, message=message) from None
        blob = base64.b64encode(data).decode("ascii")
        return types.ReadResourceResult(
            contents=[types.BlobResourceContents(uri=uri, mime_type=media, blob=blob)]
        )

    return Server(
        "copilot",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_templates,
        on_read_resource=on_read_resource,
    )


def _error(types: Any, text: str) -> Any:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _artifacts_in(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every artifact (with a URI) in a tool's or ask's JSON."""
    found = [a for a in data.get("artifacts", []) if a.get("uri")]
    for read in data.get("reads", []):
        found += [a for a in read["result"].get("artifacts", []) if a.get("uri")]
    return found


def _readable(name: str, data: dict[str, Any]) -> str:
    """The text block beside the structured content: what a person reads first."""
    if name == "ask":
        return str(data.get("answer", ""))
    if name == "list_studies":
        lines = [f"{r['study']}: {r['summary']}" for r in data["studies"]]
        return "\n".join(lines) or "no study matches"
    said: list[str] = []
    for read in data["reads"]:
        view = f"On the {read['view']}: " if read.get("view") and len(data["reads"]) > 1 else ""
        said += [f"{view}{s['text']}" for s in read["statements"]]
        if read["result"]["status"] != "ok":
            said.append(f"{view}{name} {read['result']['status']}: {read['result'].get('detail', '')}")
    return "\n".join(said) or json.dumps(data)[:2000]
