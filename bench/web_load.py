"""Load test of the web API: how many ``POST /api/analyze`` per second one server process holds.

    python bench/web_load.py                     # 5 runs of 3,000 requests, 8 connections
    python bench/web_load.py --runs 3 --requests 1000 --connections 4
    python bench/web_load.py --endpoint advice --requests 200   # the page's other requests: advice, explore, timeline

Starts ``llm-roofline serve`` on a free loopback port (127.0.0.1 only), sends a bounded number of
requests over keep-alive connections from client threads, stops at the request count or the time
limit, whichever comes first, then stops the server. Prints each run's requests/s, latency median
and 99th percentile, and errors, then the median over runs, with the machine and the date.
Nothing here leaves this machine. The result is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

LOOPBACK = "127.0.0.1"
ANALYZE_BODY = {"model": "llama-2-7b", "hardware": ["jetson-orin-nx"], "phase": "decode", "batch": 1,
                "seq_len": 1024}
# What the page asks besides the analysis, and the key its answer starts with (checked per request).
ENDPOINTS = {
    "analyze": ("/api/analyze", ANALYZE_BODY, b'"results"'),
    "advice": ("/api/advice", ANALYZE_BODY | {"target_ms": 50}, b'"model"'),
    "explore": ("/api/explore", ANALYZE_BODY, b'"model"'),
    "timeline": ("/api/timeline", ANALYZE_BODY | {"steps": 512}, b'"model"'),
}


class LoadResult(NamedTuple):
    requests: int
    errors: int
    elapsed_s: float
    latencies_s: list[float]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s

    def latency_quantile_s(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_post(connection: http.client.HTTPConnection, path: str, payload: bytes, headers: dict[str, str],
               expect: bytes = b'"results"') -> tuple[http.client.HTTPConnection, bool, float]:
    """One POST on a keep-alive connection: (the connection to go on with, whether it answered 200 with a JSON
    body that starts with the key ``expect``, the seconds it took). A failed connection is replaced by a new one."""
    start = time.perf_counter()
    try:
        connection.request("POST", path, payload, headers)
        response = connection.getresponse()
        ok = response.status == 200 and expect in response.read()[:64]
    except (OSError, http.client.HTTPException):
        ok = False
        connection.close()
        connection = http.client.HTTPConnection(connection.host, connection.port, timeout=connection.timeout)
    return connection, ok, time.perf_counter() - start


def load(port: int, total_requests: int, connections: int, time_limit_s: float, path: str = "/api/analyze",
         body: dict[str, object] | None = None, expect: bytes = b'"results"') -> LoadResult:
    """Send ``total_requests`` POSTs to 127.0.0.1:``port`` over ``connections`` keep-alive connections.

    Bounded twice: by the request count and by ``time_limit_s``. A request is an error unless it
    returns 200 with a JSON body that starts with the key ``expect``.
    """
    payload = json.dumps(body or ANALYZE_BODY).encode()
    headers = {"Content-Type": "application/json"}
    lock = threading.Lock()
    remaining = [total_requests]
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + time_limit_s

    def worker() -> None:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        own: list[float] = []
        failed = 0
        while time.perf_counter() < deadline:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            connection, ok, seconds = timed_post(connection, path, payload, headers, expect)
            own.append(seconds)
            failed += not ok
        connection.close()
        with lock:
            latencies.extend(own)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(len(latencies), errors[0], time.perf_counter() - start, latencies)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not start on port {port} within {timeout_s} s")


@contextmanager
def served() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``llm-roofline serve`` on a free loopback port, up and answering; stopped when the block ends."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llm_roofline.faces.cli.main", "serve", "--host", LOOPBACK,
                               "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_until_up(port)
        yield port, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000, help="requests per run (bounded)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--time-limit-s", type=float, default=30.0, help="per run (bounded)")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="analyze", help="which request (default analyze)")
    args = parser.parse_args()
    path, body, expect = ENDPOINTS[args.endpoint]

    with served() as (port, _server):
        load(port, min(200, args.requests), args.connections, 10, path, body, expect)  # warm-up
        print(f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}), "
              f"{datetime.date.today()}: POST {path} (Llama-2-7B decode on Jetson Orin NX), "
              f"{args.requests} requests x {args.runs} runs, {args.connections} keep-alive connections")
        rates = []
        for run in range(1, args.runs + 1):
            result = load(port, args.requests, args.connections, args.time_limit_s, path, body, expect)
            rates.append(result.requests_per_s)
            print(f"run {run}: {result.requests} requests in {result.elapsed_s:.2f} s = "
                  f"{result.requests_per_s:.0f} requests/s; latency median "
                  f"{1e3 * result.latency_quantile_s(0.5):.1f} ms, p99 {1e3 * result.latency_quantile_s(0.99):.1f} ms; "
                  f"errors {result.errors}")
        print(f"median: {statistics.median(rates):.0f} requests/s")


if __name__ == "__main__":
    main()
