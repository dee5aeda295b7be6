"""The mapping file that makes an MCP server's tools copilot tools (``mcp-tools.toml``).

A site that already serves an expert over the Model Context Protocol plugs it in without
writing Python: the file names each server (a stdio command or a streamable-HTTP URL) and, per
remote tool, what the planner needs to route questions to it (intents, modalities, finding
labels) and how it is called (arguments, time limit). The format is documented in docs/mcp.md::

    [servers.chest_ai]
    command = ["python", "/opt/chest-ai/server.py"]      # or: url = "http://127.0.0.1:9000/mcp"

    [[servers.chest_ai.tools]]
    remote = "pneumothorax_expert"
    name = "chest_ai_pneumothorax"
    intents = ["finding"]
    labels = ["pneumothorax"]
    modalities = ["DX", "CR"]
    would_add = "the site's pneumothorax model"
    timeout_s = 30

Where the file is: :func:`mapping_path` (``COPILOT_MCP_TOOLS``, else ``mcp-tools.toml`` in the
config dir). A file that cannot be read is a :class:`~copilot.errors.ConfigError` naming the
file and the problem.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from copilot.errors import ConfigError
from copilot.routing.intents import ToolIntent
from copilot.study.views import View

if TYPE_CHECKING:
    from copilot.config import Settings

__all__ = [
    "ARGUMENT_VALUES",
    "ArgumentValue",
    "McpMapping",
    "McpServer",
    "McpToolMapping",
    "load_mapping",
    "mapping_path",
]

#: What a copilot request can send to a remote tool, by name (the ``arguments`` values):
#: ``image_path`` the DICOM file, ``question`` the question, ``modality``, ``body_part`` and
#: ``view`` of the image, ``study_summary`` the de-identified one-line summary.
ArgumentValue = Literal["image_path", "question", "modality", "body_part", "view", "study_summary"]
ARGUMENT_VALUES: tuple[str, ...] = get_args(ArgumentValue)
#: Sent when the remote tool's input schema names none of :data:`ARGUMENT_VALUES`.
DEFAULT_ARGUMENTS = ("image_path", "question")

MAPPING_FILE = "mcp-tools.toml"


class McpToolMapping(BaseModel):
    """One remote tool as a copilot tool: how the planner routes to it and how it is called."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    remote: str = Field(min_length=1, description="The tool's name on the MCP server.")
    name: str = Field(
        default="",
        pattern=r"^$|^[a-z][a-z0-9_]{1,48}$",
        description="The copilot tool name (default: the remote name).",
    )
    title: str = Field(default="", max_length=80, description="How answers name it.")
    description: str = Field(default="", description="What the planner reads (default: the server's).")
    version: str = "mcp"
    intents: tuple[ToolIntent, ...] = ()
    labels: tuple[str, ...] = ()
    anatomy: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    views: tuple[View, ...] = ()
    questions: tuple[str, ...] = ()
    would_add: str = ""
    needs_image: bool = True
    question_dependent: bool = True
    timeout_s: float | None = Field(default=None, gt=0, description="Its own time limit (seconds).")
    score_meaning: str = Field(
        default="",
        description="What the remote tool's scores are, when its findings do not say.",
    )
    arguments: dict[str, ArgumentValue] = Field(
        default_factory=dict,
        description="Remote argument name -> the copilot value it receives (default: the values "
        "the remote tool's input schema names).",
    )

    @property
    def tool_name(self) -> str:
        """The copilot tool name."""
        return self.name or self.remote


class McpServer(BaseModel):
    """One MCP server: a command started over stdio, or a streamable-HTTP URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: tuple[str, ...] = Field(default=(), description="The stdio server's command line.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the command.")
    cwd: str | None = None
    url: str | None = Field(default=None, description="A streamable-HTTP endpoint (http://host:port/mcp).")
    key_env: str | None = Field(
        default=None, description="The environment variable holding the HTTP server's key (Bearer)."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Time limit of one call (start included).")
    tools: tuple[McpToolMapping, ...] = ()

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both or neither")
        return self

    @property
    def where(self) -> str:
        """How to reach it, in one short phrase (no key, no environment)."""
        return self.url or " ".join(self.command)

    def key(self) -> str | None:
        """The HTTP key, read from ``key_env`` now (never stored in the file)."""
        return os.environ.get(self.key_env) if self.key_env else None


class McpMapping(BaseModel):
    """The whole mapping file: servers by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    servers: dict[str, McpServer] = Field(default_factory=dict)


def mapping_path(settings: Settings) -> Path:
    """The mapping file: ``settings.mcp_tools`` (``COPILOT_MCP_TOOLS``), else
    ``mcp-tools.toml`` in the config dir."""
    from copilot import paths

    return settings.mcp_tools or paths.config_dir() / MAPPING_FILE


def load_mapping(path: Path) -> McpMapping:
    """The mapping in ``path`` (an empty one when the file does not exist). Raises
    :class:`ConfigError` naming the file and what is wrong in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpMapping()
    except OSError as exc:
        raise ConfigError(f"cannot read the MCP tools mapping {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the MCP tools mapping {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from exc
    try:
        return McpMapping.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the MCP tools mapping {path} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"the MCP tools mapping {path} is invalid at {where}: {first['msg']}") from exc
