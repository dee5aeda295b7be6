"""Start and stop ``copilot serve``: Ray (local, or a cluster's address), one deployment per
expert tool and the HTTP ingress."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from copilot.errors import ConfigError, ServerError

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.tools.contract import Tool

log = logging.getLogger(__name__)

APP_NAME = "copilot"


class ServerInfo(BaseModel):
    """Where a started server answers."""

    url: str
    tools: list[str]
    replicas: int
    batching: bool
    gpus: float
    key_required: bool
    started_ray: bool = False


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to listen beyond this machine without an API key, and a port already taken."""
    key = settings.serve_api_key.get_secret_value().strip() if settings.serve_api_key else ""
    if settings.serve_api_key is not None and not key:
        raise ConfigError("COPILOT_SERVE_API_KEY is set but empty: set a key, or unset it on loopback")
    if not is_loopback(settings.serve_host) and not key:
        raise ConfigError(
            f"refusing to listen on {settings.serve_host} without an API key: set COPILOT_SERVE_API_KEY "
            "(clients send it), or listen on 127.0.0.1"
        )
    with socket.socket(socket.AF_INET6 if ":" in settings.serve_host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.serve_host, settings.serve_port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.serve_host}:{settings.serve_port}: {exc.strerror or exc} "
                "(choose another with --port)"
            ) from None


def _ray() -> Any:
    from copilot.runtime.ray_cluster import require_ray

    return require_ray()


def init_ray(settings: Settings, address: str | None = None, cpus: float = 0.0) -> bool:
    """Join ``address`` (or settings.ray_address), else start a local Ray with at least
    ``cpus`` logical CPUs; True when this call started it."""
    from copilot.runtime.ray_cluster import start_ray

    return start_ray(address or settings.ray_address, cpus, settings)


def _gpu_share(settings: Settings) -> float:
    """Each replica's GPU share where Ray sees a GPU, else 0 (CPU-only works)."""
    ray = _ray()
    return settings.serve_replica_gpus if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def build_app(settings: Settings, tools: dict[str, type[Tool]]) -> tuple[Any, ServerInfo]:
    """The Serve application: one deployment per tool, the ingress bound to their handles."""
    from ray import serve

    from copilot.server.ingress import Ingress
    from copilot.server.tool_replica import ToolReplica

    gpus = _gpu_share(settings)
    batch = settings.serve_max_batch_size if settings.serve_batching else 1
    bound = []
    for name, cls in tools.items():
        # Ray caches GPU needs per deployment: tools without models never take a GPU share.
        needs_gpu = bool(cls.manifest.models) and cls.manifest.gpu_memory_mb > 0
        deployment = serve.deployment(
            name=f"tool-{name}",
            num_replicas=settings.serve_replicas,
            max_ongoing_requests=max(8, 2 * batch),
            ray_actor_options={
                "num_cpus": settings.serve_replica_cpus,
                "num_gpus": gpus if needs_gpu else 0.0,
            },
            health_check_period_s=2,
            health_check_timeout_s=30,
        )(ToolReplica)
        bound.append(deployment.bind(cls, settings.serve_batching, batch, settings.serve_batch_wait_s))
    ingress = serve.deployment(
        name="ingress", num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0}
    )(Ingress)
    key = settings.serve_api_key.get_secret_value() if settings.serve_api_key else ""
    digest = hashlib.sha256(key.encode()).hexdigest() if key else None
    app = ingress.bind(digest, list(tools), *bound)
    info = ServerInfo(
        url=f"http://{settings.serve_host}:{settings.serve_port}",
        tools=list(tools),
        replicas=settings.serve_replicas,
        batching=settings.serve_batching,
        gpus=gpus,
        key_required=digest is not None,
    )
    return app, info


def tool_classes(settings: Settings, names: list[str] | None = None) -> dict[str, type[Tool]]:
    """The installed tools' classes (every working one, or ``names``)."""
    from copilot.tools.discovery import create_tools

    return {name: type(tool) for name, tool in create_tools(settings, names).items()}


def start(
    settings: Settings,
    tools: dict[str, type[Tool]] | None = None,
    *,
    address: str | None = None,
) -> ServerInfo:
    """Start (or update) the server and return once every deployment is ready."""
    from ray import serve

    check_bind(settings)
    chosen = tools if tools is not None else tool_classes(settings)
    needed = len(chosen) * settings.serve_replicas * settings.serve_replica_cpus
    started = init_ray(settings, address, needed + 1)
    _check_resources(needed)
    serve.start(http_options={"host": settings.serve_host, "port": settings.serve_port})
    app, info = build_app(settings, chosen)
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    except Exception as exc:  # a replica that cannot start: one line, and Ray is not left behind
        if started:
            ray_module = _ray()
            serve.shutdown()
            ray_module.shutdown()
        raise ServerError(f"the tools could not be deployed: {type(exc).__name__}: {exc}") from None
    log.info("copilot serve ready at %s with %d tools", info.url, len(chosen))
    return info.model_copy(update={"started_ray": started})


def _check_resources(cpus: float) -> None:
    """Refuse a plan the cluster cannot place (Serve would wait for it forever)."""
    ray = _ray()
    have = ray.available_resources().get("CPU", 0.0)
    if cpus > have + 1e-9:
        raise ConfigError(
            f"the tools' replicas need {cpus:g} CPUs and Ray has {have:g} free: lower --replicas or "
            "COPILOT_SERVE_REPLICA_CPUS"
        )


def stop(started_ray: bool = True) -> None:
    """Remove the application and stop Serve (and Ray, when this process started it)."""
    ray = _ray()
    from ray import serve

    if not ray.is_initialized():
        return
    serve.shutdown()
    if started_ray:
        from copilot.runtime.ray_cluster import stop_ray

        stop_ray()  # Ray, its watchdog and this process's run marker
