"""Facts about the host the measurement runs on: processor, caches, memory, cores, load.

Read from the operating system (Linux sysfs and /proc, ``os.sysconf``); anything unknown is None.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LLC_BYTES = 32 * 2**20  # assumed when the OS does not say (the DRAM sizes then err large)


@dataclass(frozen=True, slots=True)
class Cache:
    """One data-cache level as the threads see it: bytes per instance and how many instances serve them."""

    level: str  # "L1", "L2", "L3"
    bytes_per_instance: int
    shared_by_cpus: int

    def capacity_for(self, threads: int) -> int:
        """Bytes of this level that ``threads`` threads on distinct cores can fill together."""
        instances = max(1, -(-threads // max(1, self.shared_by_cpus)))
        return self.bytes_per_instance * instances


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _size_bytes(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def _cpu_count_in(cpu_list: str) -> int:
    count = 0
    for part in cpu_list.strip().split(","):
        if "-" in part:
            low, high = part.split("-")
            count += int(high) - int(low) + 1
        elif part:
            count += 1
    return count


def data_caches() -> list[Cache]:
    """The data caches of CPU 0, innermost first (Linux sysfs); empty when the OS does not say."""
    caches: list[Cache] = []
    folder = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        entries = sorted(folder.glob("index*"))
        for entry in entries:
            if (entry / "type").read_text().strip() == "Instruction":
                continue
            caches.append(Cache(level=f"L{(entry / 'level').read_text().strip()}",
                                bytes_per_instance=_size_bytes((entry / "size").read_text()),
                                shared_by_cpus=_cpu_count_in((entry / "shared_cpu_list").read_text())))
    except (OSError, ValueError):
        return []
    return sorted(caches, key=lambda c: c.level)


def last_level_cache_bytes(caches: list[Cache]) -> int:
    return caches[-1].bytes_per_instance if caches else DEFAULT_LLC_BYTES


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def load_average() -> float | None:
    """The one-minute load average: runnable processes, ours excluded only by the caller's timing."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc: its start time and the uptime, in clock ticks), or None."""
    try:
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        stat = Path("/proc/self/stat").read_text()
        started_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, counted after the command name
        return max(0.0, uptime_s - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def host_name() -> str:
    return socket.gethostname() or "unknown-host"


def machine_cpu_s() -> tuple[float, float] | None:
    """(busy, stolen) CPU-seconds of the whole machine since boot (Linux /proc/stat), or None.

    Busy is user + nice + system + irq + softirq time of every process, this one included; stolen is
    time the hypervisor gave the virtual CPUs' cores to other guests.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        ticks_per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    user, nice, sys_, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + sys_ + irq + softirq) / ticks_per_s, steal / ticks_per_s


def process_cpu_s() -> float:
    """CPU-seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


class NeighbourMeter:
    """How much CPU other processes (and other guests) took while the measurement ran."""

    def __init__(self) -> None:
        self._machine = machine_cpu_s()
        self._own_s = process_cpu_s()
        self._wall_s = time.monotonic()

    def read(self) -> dict[str, float] | None:
        """Average CPUs kept busy by other processes, and average CPUs stolen, since construction."""
        machine = machine_cpu_s()
        if self._machine is None or machine is None:
            return None
        wall_s = max(time.monotonic() - self._wall_s, 1e-9)
        own_s = process_cpu_s() - self._own_s
        others = max(0.0, (machine[0] - self._machine[0] - own_s) / wall_s)
        return {"other_processes_cpus": others, "stolen_cpus": max(0.0, (machine[1] - self._machine[1]) / wall_s)}
