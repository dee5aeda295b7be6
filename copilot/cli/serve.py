"""``copilot serve``: the expert tools, warm, behind an HTTP API (Ray Serve)."""

from __future__ import annotations

import signal
import threading

import typer


def serve(
    host: str = typer.Option(
        None, "--host", help="Address to listen on (default 127.0.0.1: this machine only)."
    ),
    port: int = typer.Option(None, "--port", min=1, max=65535, help="Port (default 8000)."),
    replicas: int = typer.Option(None, "--replicas", min=1, max=64, help="Replicas of each tool."),
    gpus: float = typer.Option(None, "--gpus-per-replica", min=0, max=8, help="GPU share of each replica."),
    batching: bool = typer.Option(
        None, "--batching/--no-batching", help="Dynamic batching of image requests."
    ),
    max_batch: int = typer.Option(None, "--max-batch-size", min=1, max=1024, help="Largest dynamic batch."),
    tools: str = typer.Option(
        None, "--tools", help="Comma-separated tools to serve (default: all installed)."
    ),
    address: str = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray)."),
) -> None:
    """Serve the expert tools to 'copilot ask --server', the app and the Python API."""
    from copilot.cli.output import stderr
    from copilot.config import get_settings
    from copilot.server.launch import check_bind, start, stop, tool_classes

    chosen = {
        "serve_host": host,
        "serve_port": port,
        "serve_replicas": replicas,
        "serve_replica_gpus": gpus,
        "serve_batching": batching,
        "serve_max_batch_size": max_batch,
    }
    settings = get_settings().model_copy(update={k: v for k, v in chosen.items() if v is not None})
    check_bind(settings)  # a refused address or a taken port fails before anything starts
    names = [t.strip() for t in tools.split(",") if t.strip()] if tools else None
    classes = tool_classes(settings, names)
    stderr.print(f"Starting Ray Serve with {len(classes)} tools (first start takes a while)...", markup=False)
    info = start(settings, classes, address=address)
    key = "API key required" if info.key_required else "no API key (loopback only)"
    share = f"{info.gpus:g} GPU each" if info.gpus else "CPU"
    stderr.print(
        f"copilot serve: {info.url} | {len(info.tools)} tools x {info.replicas} replica(s), {share}, "
        f"batching {'on' if info.batching else 'off'}, {key}. Ctrl-C stops it.",
        markup=False,
        highlight=False,
    )

    def _terminate(*_: object) -> None:  # a service manager's stop: the same clean shutdown
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stderr.print("stopping...", markup=False)
    finally:
        stop(info.started_ray)


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("serve")(serve)
