"""Run hostile-corpus cases in this process, one after another, and write one JSON line per case.

``python tests/hostile_runner.py CASES.json RESULTS.jsonl WORKDIR [FIRST]``: runs the cases from index
FIRST on, each in its own folder under WORKDIR, calling the CLI's ``main`` in-process (imports and
catalogue caches are shared, so a case costs what its own work costs). Per case it records the exit
status, what reached file descriptors 1 and 2, any exception that escaped ``main``, the wall time, the
peak RSS of the case (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the files
the case left behind. A case past ``CASE_LIMIT_S`` is interrupted by SIGALRM; the address space is
capped a few GiB above the start so a runaway allocation fails fast instead of swapping the machine.
The parent (tests/test_fuzz.py) restarts the runner after a case that hangs where no signal reaches.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import struct
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_corpus import CASE_LIMIT_S, ESCAPES


class CaseTimeout(BaseException):
    """Raised by SIGALRM in a case that runs past its limit."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise CaseTimeout(f"still running after {CASE_LIMIT_S} s")


# --- making the files ----------------------------------------------------------------------------

def _gguf_bytes(kind: str, folder: Path) -> bytes:
    def string(text: str | bytes) -> bytes:
        data = text.encode() if isinstance(text, str) else text
        return struct.pack("<Q", len(data)) + data

    def header(version: int = 3, tensors: int = 0, keys: int = 0) -> bytes:
        return b"GGUF" + struct.pack("<IQQ", version, tensors, keys)

    arch = string("general.architecture") + struct.pack("<I", 8) + string("llama")
    if kind == "tensor_count_huge":
        return header(tensors=2**63 - 1, keys=1) + arch
    if kind == "key_count_huge":
        return header(keys=10**12) + arch
    if kind == "string_length_huge":
        return header(keys=1) + struct.pack("<Q", 2**62) + b"general"
    if kind == "array_length_huge":
        return header(keys=2) + arch + string("llama.x") + struct.pack("<IIQ", 9, 4, 2**62) + b"\0" * 64
    if kind == "value_type_bad":
        return header(keys=2) + arch + string("llama.x") + struct.pack("<I", 99) + b"\0" * 64
    if kind == "version_bad":
        return header(version=99, keys=1) + arch
    if kind == "many_keys":
        count = 200_000
        body = b"".join(string(f"llama.k{i}") + struct.pack("<II", 4, i) for i in range(count))
        return header(keys=count + 1) + arch + body
    raise ValueError(kind)


def _factory_gguf(kind: str, path: Path) -> None:
    import gguf_factory as factory

    keys: dict[str, Any] = factory.llama_keys(d=64, layers=2, heads=4, kv_heads=2, inter=128)
    name = "tiny"
    if kind == "escaped_name":
        name = ESCAPES
    elif kind == "huge_dims":
        keys["embedding_length"] = 4_000_000_000
    elif kind == "huge_layers":
        keys["block_count"] = 10**9
    tensors = factory.llama_like_tensors(d=64, layers=2, heads=4, kv_heads=2, head_dim=16, inter=128, vocab=256)
    writer_keys = {**keys, "general.name": name}
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    for key, value in writer_keys.items():
        full = key if key.startswith("general.") else f"llama.{key}"
        if isinstance(value, str):
            writer.add_string(full, value)
        else:
            writer.add_uint32(full, value)
    for tensor, shape in tensors:
        nbytes = factory.tensor_bytes(shape, gguf.GGMLQuantizationType.F16)
        writer.add_tensor_info(tensor, (*shape[:-1], shape[-1] * 2), __import__("numpy").dtype("uint8"), nbytes,
                               raw_dtype=gguf.GGMLQuantizationType.F16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    if kind == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)


def materialize(folder: Path, files: dict[str, Any]) -> None:
    for name, spec in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if "text" in spec:
            path.write_text(spec["text"], encoding="utf-8", errors="surrogatepass")
        elif "bytes_hex" in spec:
            path.write_bytes(bytes.fromhex(spec["bytes_hex"]))
        elif "link" in spec:
            path.symlink_to(spec["link"])
        elif "fifo" in spec:
            os.mkfifo(path)
        elif "folder" in spec:
            path.mkdir()
        elif "sparse" in spec:
            with open(path, "wb") as out:
                out.truncate(spec["sparse"])
        elif "gguf" in spec:
            if spec["gguf"] in ("truncated", "escaped_name", "huge_dims", "huge_layers"):
                _factory_gguf(spec["gguf"], path)
            else:
                path.write_bytes(_gguf_bytes(spec["gguf"], folder))
        else:
            raise ValueError(f"no way to make {name}: {spec}")


def listing(folder: Path) -> list[str]:
    found = []
    for root, dirs, names in os.walk(folder):
        for entry in dirs + names:
            found.append(os.path.relpath(os.path.join(root, entry), folder))
    return sorted(found)


# --- running one case ----------------------------------------------------------------------------

def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # not every kernel lets a process reset it
        Path("/proc/self/clear_refs").write_text("5")


def run_case(case: dict[str, Any], folder: Path) -> dict[str, Any]:
    from llm_roofline.faces.cli.main import main

    folder.mkdir(parents=True)
    materialize(folder, case["files"])
    before = listing(folder)
    out_path, err_path = folder.parent / f"{folder.name}.stdout", folder.parent / f"{folder.name}.stderr"
    saved = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    cwd = os.getcwd()
    escaped = None
    code: int | None = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        _reset_peak()
        os.chdir(folder)
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
        try:
            code = main(case["argv"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as exc:
            escaped = "".join(traceback.format_exception(exc))[-3000:]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - start
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            sys.stdout, sys.stderr = streams
            os.chdir(cwd)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    peak = _peak_rss_bytes()
    after = listing(folder) if folder.is_dir() else []
    return {"id": case["id"], "code": code, "escaped": escaped, "seconds": round(elapsed, 3), "peak_rss_bytes": peak,
            "stdout": out_path.read_bytes()[:200_000].decode("utf-8", "replace"),
            "stderr": err_path.read_bytes()[:20_000].decode("utf-8", "replace"),
            "new_files": sorted(set(after) - set(before)), "stdout_bytes": out_path.stat().st_size}


def main(argv: list[str]) -> None:
    cases = json.loads(Path(argv[0]).read_text())
    results, workdir = Path(argv[1]), Path(argv[2])
    first = int(argv[3]) if len(argv) > 3 else 0
    import matplotlib

    matplotlib.use("Agg")
    import llm_roofline.faces.cli.main  # noqa: F401 - imported before the address-space cap

    signal.signal(signal.SIGALRM, _alarm)
    size = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmSize:"))) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + (6 << 30), resource.RLIM_INFINITY))
    with open(results, "a", encoding="utf-8") as out:
        for index in range(first, len(cases)):
            out.write(json.dumps({"start": index}) + "\n")
            out.flush()
            result = run_case(cases[index], workdir / f"case{index:05d}")
            result["index"] = index
            out.write(json.dumps(result) + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
