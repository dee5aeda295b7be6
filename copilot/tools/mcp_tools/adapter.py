"""An MCP server's tool as a copilot :class:`~copilot.tools.contract.Tool`.

:func:`tool_class` builds one :class:`McpTool` subclass per mapped remote tool, with a manifest
made from its mapping (docs/mcp.md), so the planner routes to it, ``invoke`` gates, times and
checks it, and the composer and verifier word it exactly like an entry-point plug-in.

What is sent: the arguments the remote input schema names among
:data:`~copilot.tools.mcp_tools.mapping.ARGUMENT_VALUES` (``image_path``, ``question``,
``modality``, ``body_part``, ``view``, ``study_summary``) and the request's options it names;
or the mapping's ``arguments``; or, when the schema names none, ``image_path`` and ``question``.
The question and the options' strings are de-identified first, as for a ``copilot serve``
server (:func:`copilot.text.redact.record_redactor`: the image's identifiers, its path, and
identifier-like text); ``image_path`` is the DICOM file's path as it is (the expert reads the
file: a stdio or loopback server on this machine; docs/mcp.md says so).

What is read back (:func:`result_of`), the remote tool's structured content::

    {"findings": [{"label": "Pneumothorax", "score": 0.91, "threshold": 0.5,
                   "score_meaning": "...", "text": "...", "value": 2.1, "unit": "cm",
                   "kind": "finding" | "measurement" | "answer" | "note", "side": "left"}],
     "text": "free text"}

(as structured content, or as a text block holding that JSON object), or plain text, which
becomes one ``answer`` finding. A result the server marks as an error is an
error result with the server's words; every result then passes the host's checks
(:func:`copilot.tools.results.checked_result`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from typing import Any, ClassVar

from copilot.availability import Availability
from copilot.errors import ToolError
from copilot.schema.results import Finding, Provenance, ToolResult
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.manifest import ToolManifest
from copilot.tools.mcp_tools.client import MCP_INSTALL, call_remote
from copilot.tools.mcp_tools.mapping import ARGUMENT_VALUES, DEFAULT_ARGUMENTS, McpServer, McpToolMapping

__all__ = ["FINDING_FIELDS", "McpTool", "manifest_of", "result_of", "tool_class"]

#: The finding fields read from a remote result; anything else is left out.
FINDING_FIELDS = (
    "label", "kind", "value", "unit", "score", "threshold", "score_meaning", "side", "location", "text",
)  # fmt: skip
#: Environment variable names whose values are secrets (left out of the cache key).
SECRET_NAME = re.compile(r"key|token|secret|passw|credential|auth", re.IGNORECASE)
#: What a score means when neither the remote finding nor the mapping says.
UNSTATED_SCORE = "a score from the site's MCP tool; the server does not say whether it is calibrated"


class McpTool(Tool):
    """A remote MCP tool. Subclasses (made by :func:`tool_class`) set ``manifest``, ``server``
    (where it is served), ``server_name`` and ``mapping``."""

    server: ClassVar[McpServer]
    server_name: ClassVar[str]
    mapping: ClassVar[McpToolMapping]

    def available(self) -> Availability:
        """Cheap: the SDK is installed and a stdio command exists (nothing is started)."""
        try:
            import mcp  # noqa: F401
        except ImportError:
            reason = "the MCP client (the 'mcp' package) is not installed"
            return Availability(ok=False, reason=reason, fix=MCP_INSTALL)
        if self.server.command and shutil.which(self.server.command[0]) is None:
            return Availability(
                ok=False,
                reason=f"the MCP server command {self.server.command[0]!r} is not found",
                fix=f"correct servers.{self.server_name}.command in the MCP tools mapping",
            )
        return Availability(ok=True)

    def cache_origin(self) -> str:
        """Results are the server's: keyed by everything of the server's and the tool's mapping
        that can change a result (command or URL, environment, working folder, time limit, remote
        tool, arguments, labels, score meaning...), never by a secret's value: an environment
        variable named like a key, token, secret or password counts by its name only."""
        server = self.server.model_dump(mode="json", exclude={"tools"})
        server["env"] = {k: None if SECRET_NAME.search(k) else v for k, v in self.server.env.items()}
        facts = [server, self.mapping.model_dump(mode="json")]
        return "mcp#" + hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def timeout_s(self) -> float:
        """The call's time limit: the tool's own, else its server's."""
        return self.mapping.timeout_s or self.server.timeout_s

    def run(self, request: ToolRequest) -> ToolResult:
        """Call the remote tool for one image and map its reply into a result."""
        start = time.perf_counter()
        values = request_values(request)
        reply = call_remote(self.server, self.mapping.remote, values, self._choose, self.timeout_s)
        if reply.is_error:
            why = reply.text.strip()[:500] or "no reason given"
            raise ToolError(f"the MCP tool {self.mapping.remote!r} failed: {why}")
        result = result_of(self.name, reply.structured, reply.text, self.mapping)
        result.provenance = Provenance(
            tool=self.name,
            tool_version=self.manifest.version,
            model_id=f"mcp:{self.server_name}/{self.mapping.remote}",
            device="mcp",
            seconds=round(time.perf_counter() - start, 4),
        )
        return result

    def _choose(self, accepted: frozenset[str], values: dict[str, Any]) -> dict[str, Any]:
        """The arguments to send (see the module docstring)."""
        if self.mapping.arguments:
            return {remote: values.get(value) for remote, value in self.mapping.arguments.items()}
        options = values.get("options") or {}
        chosen = {k: values[k] for k in ARGUMENT_VALUES if k in accepted and values.get(k) is not None}
        chosen.update({k: v for k, v in options.items() if k in accepted})
        if not chosen and not accepted & set(ARGUMENT_VALUES):
            chosen = {k: values[k] for k in DEFAULT_ARGUMENTS if values.get(k) is not None}
            if accepted:  # a schema that names other arguments only: send none of ours it refuses
                chosen = {k: v for k, v in chosen.items() if k in accepted}
        return chosen


def request_values(request: ToolRequest) -> dict[str, Any]:
    """What a request can send, by :data:`ARGUMENT_VALUES` name (plus ``options``): the question
    and string options de-identified (see the module docstring)."""
    from copilot.text.redact import record_redactor

    instance = request.instance
    redact = record_redactor(instance)
    return {
        "image_path": getattr(instance, "path", None),
        "question": redact(request.question) if request.question else request.question,
        "modality": getattr(instance, "modality", None) or None,
        "body_part": getattr(instance, "body_part", None) or None,
        "view": getattr(instance, "view", None) or None,
        "study_summary": request.study_summary or None,
        "options": {k: redact(v) if isinstance(v, str) else v for k, v in request.options.items()},
    }


def result_of(tool: str, structured: dict[str, Any] | None, text: str, mapping: McpToolMapping) -> ToolResult:
    """A remote reply as a :class:`ToolResult` (shape in the module docstring)."""
    findings: list[Finding] = []
    free_text = text.strip() or None
    structured = _structured(structured, free_text)
    if structured is not None:
        # {"text": ...}, or an SDK server's wrapped string return ({"result": ...})
        said = [structured[k] for k in ("text", "result") if isinstance(structured.get(k), str)]
        free_text = (said[0].strip() or None) if said else None
        for raw in structured.get("findings") or []:
            if isinstance(raw, dict) and raw.get("label"):
                findings.append(_finding(raw, mapping))
    if not findings and free_text:
        label = mapping.labels[0] if mapping.labels else mapping.tool_name.replace("_", " ")
        findings.append(Finding(label=label, kind="answer", text=free_text))
    return ToolResult(tool=tool, findings=findings, text=free_text)


def _structured(structured: dict[str, Any] | None, text: str | None) -> dict[str, Any] | None:
    """The reply's structured content: as given (a ``{"result": {...}}`` wrapper undone), else
    its text when that is one JSON object (what an SDK server returning a dict sends)."""
    if structured is None and text and text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        structured = parsed if isinstance(parsed, dict) else None
    if structured is not None and set(structured) == {"result"} and isinstance(structured["result"], dict):
        structured = structured["result"]
    return structured


def _finding(raw: dict[str, Any], mapping: McpToolMapping) -> Finding:
    """One remote finding, its known fields only; a score says what it means."""
    data = {k: raw[k] for k in FINDING_FIELDS if raw.get(k) is not None}
    if "score" in data:
        data.setdefault("score_meaning", mapping.score_meaning or UNSTATED_SCORE)
        if "threshold" in data and "above_threshold" not in data:
            with contextlib.suppress(TypeError, ValueError):
                data["above_threshold"] = float(data["score"]) >= float(data["threshold"])
    elif "value" not in data and data.get("kind") in (None, "finding") and data.get("text"):
        data["kind"] = "answer"
    return Finding.model_validate(data)


def manifest_of(mapping: McpToolMapping, server_name: str) -> ToolManifest:
    """The manifest the planner reads for a mapped remote tool."""
    name = mapping.tool_name
    description = mapping.description or (
        f"The tool {mapping.remote!r} of the MCP server {server_name!r}"
        + (f", answering about {', '.join(mapping.labels)}" if mapping.labels else "")
        + "."
    )
    return ToolManifest(
        name=name,
        title=mapping.title,
        description=description.ljust(20),
        version=mapping.version,
        modalities=mapping.modalities,
        body_parts=mapping.body_parts,
        needs_image=mapping.needs_image,
        views=mapping.views,
        questions=mapping.questions,
        labels=mapping.labels,
        intents=mapping.intents,
        anatomy=mapping.anatomy,
        would_add=mapping.would_add or f"the answer of the site's MCP tool {mapping.remote}",
        question_dependent=mapping.question_dependent,
    )


def tool_class(server_name: str, server: McpServer, mapping: McpToolMapping) -> type[McpTool]:
    """A new :class:`McpTool` subclass for one mapped remote tool."""
    attrs = {
        "manifest": manifest_of(mapping, server_name),
        "server": server,
        "server_name": server_name,
        "mapping": mapping,
        "__doc__": f"The MCP tool {mapping.remote!r} of server {server_name!r}.",
    }
    return type(f"McpTool_{mapping.tool_name}", (McpTool,), attrs)
