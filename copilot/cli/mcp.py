"""``copilot mcp``: the copilot as an MCP server (docs/mcp.md)."""

from __future__ import annotations

import typer

from copilot.errors import ConfigError

INSTALL = "pip install 'dicom-copilot[mcp]'"


def mcp(
    path: str = typer.Argument(
        ..., help="Study folder (or file), or a DICOMweb base URL (http://host:8042/dicom-web); read-only."
    ),
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="With --http: the address (loopback unless --key)."),
    port: int = typer.Option(8765, "--port", help="With --http: the port."),
    key: str = typer.Option(
        None,
        "--key",
        envvar="COPILOT_MCP_KEY",
        help="With --http: the key clients send (Bearer); needed off loopback.",
    ),
    llm: str = typer.Option(None, "--llm", help="LangChain model string for the planner and composer."),
    allow_identifiers: bool = typer.Option(
        False,
        "--allow-identifiers",
        help="Show patient identifiers (IDs, dates, UIDs) to the MCP client; by default it is treated like "
        "a remote LLM and sees de-identified summaries only.",
    ),
) -> None:
    """Serve the studies, the expert tools and 'ask' to MCP clients (stdio by default)."""
    try:
        import mcp as _sdk  # noqa: F401
    except ImportError:
        raise ConfigError(f"copilot mcp needs the MCP SDK: {INSTALL}") from None
    from copilot.mcp_server.transport import check_bind

    if http:
        check_bind(host, key)  # refused before any study is read
    from copilot.api import Copilot
    from copilot.mcp_server.server import build_server
    from copilot.mcp_server.studies import StudyDesk
    from copilot.study.source import open_source

    open_source(path)  # a missing folder or bad URL fails here, in one line
    desk = StudyDesk(Copilot(llm=llm), path, allow_identifiers=allow_identifiers)
    server = build_server(desk)
    from copilot.mcp_server import transport

    if http:
        transport.serve_http(server, host, port, key)
    else:
        transport.serve_stdio(server)


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("mcp")(mcp)
