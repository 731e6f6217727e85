"""The web server under hostile uploads: does ``POST /api/analyze`` still answer, and does memory stay bounded?

    python bench/web_hostile.py                          # 3 runs of both attacks, 32 uploaders, 20 s each
    python bench/web_hostile.py --runs 1 --uploaders 32 --duration-s 10

Starts ``llm-roofline serve`` on a free loopback port (127.0.0.1 only), warms it up (analyze requests and
one real GGUF upload), then per run mounts two attacks, each of ``--uploaders`` client processes that send
pathological GGUF headers to ``/api/models/gguf`` as fast as the server takes them, retrying at once when
refused. ``parse``: the uploaders cycle through the first four kinds below, so that the server reads and
parses all it admits; ``slow``: half of them are slow, holding the upload slots, the others parse kinds.

- ``keys``: ~64 MiB of 3.4 million one-byte keys (the issue's 13 s stall; now refused from the count);
- ``strings``: 4,096 keys whose values are 16 KiB strings: 64 MiB that the reader decodes;
- ``vocab``: two arrays of 2^20 empty strings (the most the reader steps through) padded to 64 MiB;
- ``tensors``: 32,768 tensor infos (the most allowed), padded to 64 MiB;
- ``slow``: 64 MiB announced, sent at 16 KiB/s: it holds its upload slot until the body timeout (408).

Meanwhile the main process times ``POST /api/analyze`` (Llama-2-7B decode on a Jetson Orin NX) back to back
on one keep-alive connection, and samples the server's resident memory (VmRSS of /proc/PID/status) every
50 ms. After the uploaders stop, it waits ``--settle-s`` and reads the memory again. Prints per run the
analyze latency median, 99th percentile and maximum, the uploads' outcomes by status, and the memory
(baseline after warm-up, peak, after), then the median over runs, with the machine and the date. The
uploaders use ``Expect: 100-continue``, so a refused upload's body is never sent. Nothing leaves this
machine. The result is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_load import ANALYZE_BODY, LOOPBACK, served, timed_post

HEADER_BYTES = 64 << 20  # the server's cap on a GGUF header (MAX_GGUF_HEADER_BYTES)
DECLARED_FILE_BYTES = 40 << 30  # the file size the uploads declare
SLOW_CHUNK_BYTES, SLOW_INTERVAL_S = 4096, 0.25  # the slow uploader: 16 KiB/s
KINDS = ("keys", "strings", "vocab", "tensors", "slow")
ATTACKS = {"parse": ("keys", "strings", "vocab", "tensors"),
           "slow": ("slow", "keys", "slow", "strings", "slow", "vocab", "slow", "tensors")}


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _header(kvs: bytes, n_kv: int, tensors: bytes = b"", n_tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kvs + tensors


def _padding(total: int) -> tuple[bytes, int]:
    """Keys holding uint8 arrays of at most 2^20 elements (the reader's cap on an array) that fill ``total``
    bytes, skipped without decoding; and how many keys they are."""
    parts = []
    while total > 0:
        length = min(1 << 20, total - 32)
        parts.append(_string(b"pad.%04d" % len(parts)) + struct.pack("<IIQ", 9, 0, length) + b"\0" * length)
        total -= len(parts[-1])
    return b"".join(parts), len(parts)


def hostile_headers(total: int = HEADER_BYTES) -> dict[str, bytes]:
    """Pathological GGUF headers of about ``total`` bytes, by kind (see the module's description)."""
    keys = [_string(b"%07x" % i) + struct.pack("<IB", 0, 1) for i in range((total - 24) // 20)]
    value = b"x" * (total // 4096 - 40)
    strings = b"".join(_string(b"k%05d" % i) + struct.pack("<I", 8) + _string(value) for i in range(4096))
    vocab = b"".join(_string(name) + struct.pack("<IIQ", 9, 8, 1 << 20) + _string(b"") * (1 << 20)
                     for name in (b"tokenizer.ggml.tokens", b"tokenizer.ggml.merges"))
    tensors = b"".join(_string(b"blk.%d.ffn_up.weight" % i) + struct.pack("<IQIQ", 1, 32, 0, 32 * 4 * i)
                       for i in range(32_768))
    architecture = _string(b"general.architecture") + struct.pack("<I", 8) + _string(b"llama")
    vocab_padding, vocab_pads = _padding(total - len(vocab) - 24)
    tensor_padding, tensor_pads = _padding(total - len(tensors) - len(architecture) - 24)
    return {
        "keys": _header(b"".join(keys), len(keys)),
        "strings": _header(strings, 4096),
        "vocab": _header(vocab + vocab_padding, 2 + vocab_pads),
        "tensors": _header(architecture + tensor_padding, 1 + tensor_pads, tensors, 32_768),
        "slow": _header(b"".join(keys), len(keys)),
    }


def _read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status of the next response and what followed its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, data
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def upload_once(port: int, kind: str, payload: bytes, stop: Event) -> int:
    """One upload of ``payload``; its final status (0: the connection ended without one)."""
    head = (f"POST /api/models/gguf?size={DECLARED_FILE_BYTES}&name={kind}.gguf HTTP/1.1\r\n"
            f"Host: {LOOPBACK}:{port}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection((LOOPBACK, port), timeout=60) as sock:
            sock.sendall(head)
            status, _ = _read_status(sock)
            if status != 100:
                return status  # refused before the body was read
            view = memoryview(payload)
            if kind == "slow":
                for start in range(0, len(view), SLOW_CHUNK_BYTES):
                    if stop.is_set():
                        return 0
                    sock.sendall(view[start:start + SLOW_CHUNK_BYTES])
                    time.sleep(SLOW_INTERVAL_S)
            else:
                sock.sendall(view)
            return _read_status(sock)[0]
    except OSError:  # the server refused mid-body (408, 413) and closed: read as no status
        return 0


def uploader(port: int, kind: str, payload: bytes, stop: Event, results: multiprocessing.Queue[dict[int, int]]
             ) -> None:
    """Upload ``payload`` again and again until ``stop``; put the count of each status on ``results``."""
    outcomes: collections.Counter[int] = collections.Counter()
    while not stop.is_set():
        outcomes[upload_once(port, kind, payload, stop)] += 1
    results.put(dict(outcomes))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_s(pid: int) -> float:
    """User and system CPU seconds the process has used (/proc/PID/stat's utime and stime)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RunResult(NamedTuple):
    latencies_s: list[float]
    errors: int
    outcomes: dict[int, int]
    baseline_bytes: int
    peak_bytes: int
    after_bytes: int
    server_cpu_share: float  # the server's CPU seconds per second of the attack

    def quantile_s(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_analyze(port: int, until: float) -> tuple[list[float], int]:
    """POST /api/analyze back to back on one keep-alive connection until ``until``: latencies and errors."""
    payload, headers = json.dumps(ANALYZE_BODY).encode(), {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    latencies, errors = [], 0
    while time.perf_counter() < until:
        connection, ok, seconds = timed_post(connection, "/api/analyze", payload, headers)
        latencies.append(seconds)
        errors += not ok
    connection.close()
    return latencies, errors


def run(port: int, pid: int, payloads: dict[str, bytes], kinds: tuple[str, ...], uploaders: int, duration_s: float,
        settle_s: float) -> RunResult:
    baseline = rss_bytes(pid)
    samples = [baseline]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            samples.append(rss_bytes(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    context = multiprocessing.get_context("fork")  # the payloads are shared with the children, not copied
    stop = context.Event()
    results: multiprocessing.Queue[dict[int, int]] = context.Queue()
    processes = [context.Process(target=uploader, args=(port, kinds[i % len(kinds)], payloads[kinds[i % len(kinds)]],
                                                        stop, results)) for i in range(uploaders)]
    for process in processes:
        process.start()
    time.sleep(1.0)  # let the uploads get going
    cpu_before = cpu_s(pid)
    latencies, errors = time_analyze(port, time.perf_counter() + duration_s)
    cpu_share = (cpu_s(pid) - cpu_before) / duration_s
    stop.set()
    outcomes: collections.Counter[int] = collections.Counter()
    for _ in processes:
        outcomes.update(results.get(timeout=120))
    for process in processes:
        process.join(timeout=60)
    time.sleep(settle_s)
    sampling.set()
    sampler.join()
    return RunResult(latencies, errors, dict(outcomes), baseline, max(samples), rss_bytes(pid), cpu_share)


def warm_up(port: int) -> None:
    """Analyze requests and one well-formed GGUF upload, so the baseline holds every module the attack loads."""
    time_analyze(port, time.perf_counter() + 2)
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path.insert(0, str(tests))
    from gguf_factory import T, llama_keys, llama_like_tensors, write_gguf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm-up.gguf"
        write_gguf(path, "llama", llama_keys(256, 2, 4, 2, 512), llama_like_tensors(256, 2, 4, 2, 64, 512, 320),
                   lambda name, shape: T.Q4_K, with_data=False, vocab_tokens=1000)
        data = path.read_bytes()[:1 << 20]
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        connection.request("POST", f"/api/models/gguf?size={path.stat().st_size}&name=warm-up.gguf", data,
                           {"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"the warm-up upload failed: {response.status} {response.read()[:200]!r}")


def mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--uploaders", type=int, default=32, help="hostile client processes (default 32)")
    parser.add_argument("--duration-s", type=float, default=20.0, help="analyze timing per run (default 20)")
    parser.add_argument("--settle-s", type=float, default=5.0, help="wait before the 'after' memory (default 5)")
    args = parser.parse_args()

    payloads = hostile_headers()
    with served() as (port, server):
        warm_up(port)
        print(f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}), "
              f"{datetime.date.today()}: POST /api/analyze (Llama-2-7B decode on Jetson Orin NX) back to back while "
              f"{args.uploaders} processes upload hostile GGUF headers of {HEADER_BYTES >> 20} MiB, "
              f"{args.duration_s:g} s per attack x {args.runs} runs")
        results: dict[str, list[RunResult]] = {attack: [] for attack in ATTACKS}
        for number in range(1, args.runs + 1):
            for attack, kinds in ATTACKS.items():
                result = run(port, server.pid, payloads, kinds, args.uploaders, args.duration_s, args.settle_s)
                results[attack].append(result)
                outcomes = ", ".join(f"{status or 'cut'}: {count}" for status, count in sorted(result.outcomes.items()))
                print(f"run {number}, {attack} ({', '.join(dict.fromkeys(kinds))}): analyze {len(result.latencies_s)} "
                      f"requests, latency median {1e3 * result.quantile_s(0.5):.1f} ms, p99 "
                      f"{1e3 * result.quantile_s(0.99):.1f} ms, max {1e3 * max(result.latencies_s):.1f} ms, errors "
                      f"{result.errors}; uploads by status {{{outcomes}}}; server CPU "
                      f"{result.server_cpu_share:.2f} s/s, RSS baseline "
                      f"{mb(result.baseline_bytes)}, peak {mb(result.peak_bytes)}, after {args.settle_s:g} s "
                      f"{mb(result.after_bytes)}", flush=True)
        for attack, runs in results.items():
            print(f"median over runs, {attack}: latency median "
                  f"{1e3 * statistics.median(r.quantile_s(0.5) for r in runs):.1f} ms, p99 "
                  f"{1e3 * statistics.median(r.quantile_s(0.99) for r in runs):.1f} ms, max "
                  f"{1e3 * statistics.median(max(r.latencies_s) for r in runs):.1f} ms; RSS peak "
                  f"{mb(int(statistics.median(r.peak_bytes for r in runs)))}, after "
                  f"{mb(int(statistics.median(r.after_bytes for r in runs)))}")


if __name__ == "__main__":
    main()
