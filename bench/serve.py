"""Throughput and latency of ``copilot serve`` for N concurrent clients, one and two replicas,
dynamic batching on and off, side by side in one run.

Each configuration starts a real server (Ray Serve, its own process, loopback only) over the
chest X-ray classifier with a real-format DenseNet-121 checkpoint (full architecture, test
weights: the numbers are compute, not accuracy) on whatever device the machine has. N client
threads, each with its own connection, send the same demo radiograph (minimal DICOM, as
``copilot ask --server`` sends it) ``--requests`` times each. Reported: images/s, p50/p95
latency, and the ratio batching-on / batching-off per replica count.

Usage: ``python bench/serve.py [--clients 10] [--requests 4] [--tool cxr_classifier|paced_tool]``
(``paced_tool`` costs 0.2 s a batch plus 0.01 s an image: the batching effect without CPU
contention).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support
sys.path.insert(0, str(ROOT / "bench"))

from _machine import machine_label  # noqa: E402

DEMO = ROOT.parent / "shared" / "data" / "demo-studies" / "00801"


def load(url: str, tool: str, clients: int, requests: int) -> tuple[float, list[float], int]:
    """(wall seconds, per-request latencies, failures) for ``clients`` x ``requests``."""
    from copilot.config import get_settings
    from copilot.remote.client import ServerClient
    from copilot.remote.wire import encode_request
    from copilot.study import index_folder
    from copilot.tools.contract import ToolRequest

    record = index_folder(DEMO).studies[0].primary_instance()
    call = encode_request(ToolRequest(instance=record))
    warm = ServerClient(url, get_settings())
    for _ in range(2):  # weights loaded, first batch compiled
        warm.run_tool(tool, call)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal failures
        session = ServerClient(url, get_settings())
        for _ in range(requests):
            start = time.perf_counter()
            reply = session.run_tool(tool, call)
            with lock:
                latencies.append(time.perf_counter() - start)
                failures += reply.result.status != "ok"

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, failures


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    """Run the four configurations and print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=4, help="Requests per client.")
    parser.add_argument("--tool", default="cxr_classifier", choices=["cxr_classifier", "paced_tool"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.environ.update(
        {
            "COPILOT_CACHE_DIR": str(home / "cache"),
            "COPILOT_DATA_DIR": str(home / "data"),
            "COPILOT_CONFIG_DIR": str(home / "config"),
            "COPILOT_OFFLINE": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
    )
    from copilot.config import get_settings
    from tests.support.checkpoints import install_fake_densenet
    from tests.support.serving import free_port, start_test_server, stop_test_server

    install_fake_densenet(get_settings())
    print(f"machine: {machine_label()}")
    print(f"tool: {args.tool}; {args.clients} concurrent clients x {args.requests} requests, loopback")
    rows: dict[tuple[int, bool], float] = {}
    columns = ("replicas", 8), ("batching", 8), ("images/s", 9), ("p50 s", 7), ("p95 s", 7), ("fail", 5)
    print(" ".join(f"{name:>{width}}" for name, width in columns) + f" {'start s':>8}")
    for replicas in (1, 2):
        for batching in (False, True):
            env = {
                **os.environ,
                "COPILOT_SERVE_REPLICAS": str(replicas),
                "COPILOT_SERVE_BATCHING": "true" if batching else "false",
                "COPILOT_SERVE_MAX_BATCH_SIZE": "16",
                "COPILOT_SERVE_BATCH_WAIT_S": "0.05",
            }
            started = time.perf_counter()
            tools = ["-"] if args.tool == "paced_tool" else [args.tool]
            proc, url = start_test_server(free_port(), tools, env)
            start_s = time.perf_counter() - started
            try:
                wall, latencies, failures = load(url, args.tool, args.clients, args.requests)
            finally:
                stop_test_server(proc)
            rate = len(latencies) / wall
            rows[(replicas, batching)] = rate
            print(
                f"{replicas:>8} {'on' if batching else 'off':>8} {rate:>9.2f} "
                f"{statistics.median(latencies):>7.2f} {percentile(latencies, 95):>7.2f} "
                f"{failures:>5} {start_s:>8.1f}",
                flush=True,
            )
    for replicas in (1, 2):
        ratio = rows[(replicas, True)] / rows[(replicas, False)]
        print(f"batching on / off, {replicas} replica(s): {ratio:.2f}x images/s")
    print(f"two replicas / one (batching on): {rows[(2, True)] / rows[(1, True)]:.2f}x images/s")


if __name__ == "__main__":
    main()
