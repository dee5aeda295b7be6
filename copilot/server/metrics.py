"""Prometheus metrics of a ``copilot serve`` ingress: requests, latency and in-flight count per
route (a tool's runs are the route ``tool:<name>``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class ServerMetrics:
    """One registry per ingress replica (Ray Serve's own metrics stay on its metrics port)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "copilot_requests", "Requests answered", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "copilot_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.active = Gauge(
            "copilot_requests_in_flight", "Requests in flight", ["route"], registry=self.registry
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    @contextmanager
    def in_flight(self, route: str) -> Iterator[None]:
        """Count a request as in flight while the block runs."""
        gauge = self.active.labels(route=route)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def render(self) -> str:
        """The text exposition."""
        return generate_latest(self.registry).decode()
