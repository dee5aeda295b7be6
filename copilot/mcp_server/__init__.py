"""The copilot as a Model Context Protocol server (``copilot mcp``; docs/mcp.md).

- :mod:`~copilot.mcp_server.studies`: the studies a client sees (de-identified) and chooses;
- :mod:`~copilot.mcp_server.runs`: what each MCP tool does (list, run one expert, ask);
- :mod:`~copilot.mcp_server.artifacts`: tools' files as ``copilot://artifacts/`` resources;
- :mod:`~copilot.mcp_server.server`: the SDK server and its handlers;
- :mod:`~copilot.mcp_server.transport`: stdio, and streamable HTTP (loopback or a key).

The ``mcp`` package is imported only when a server is built.
"""

from __future__ import annotations

__all__: list[str] = []
