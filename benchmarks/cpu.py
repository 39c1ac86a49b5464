"""Where the CPU goes during a throughput run (Linux /proc; empty elsewhere): this process (confirming), the
Celery worker process trees, the sandbox, PostgreSQL and Redis (all their processes: on a shared server that
includes other people's work), and the rest of the machine.

A pointer for finding the bottleneck, reported as CPU milliseconds per notification next to the ratios.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one live process, its threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15 of the full line)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (a prefork pool's children)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += _proc_cpu(p)
        todo += _children(p)
    return total


def by_command(names: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds of every live process whose command name is in `names` (PostgreSQL backends,
    redis-server), keyed by name. Processes that exit between two snapshots are missed (they land in "other")."""
    out = dict.fromkeys(names, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1:text.rfind(")")]
        if comm in out:
            fields = text.rsplit(")", 1)[1].split()
            out[comm] += (int(fields[11]) + int(fields[12])) / _TICK
    return out


def machine_busy() -> float:
    """CPU seconds all CPUs spent not idle since boot."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    values = [int(v) for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
    return (sum(values) - idle - guest) / _TICK


class CpuMeter:
    def __init__(self, env, workers) -> None:
        self.env = env
        self.workers = workers
        self.available = Path("/proc/stat").exists()

    def snapshot(self) -> dict[str, float]:
        if not self.available:
            return {}
        t = os.times()
        sandbox = self.env.sandbox.process.pid if self.env.sandbox and self.env.sandbox.process else None
        servers = by_command(("postgres", "redis-server"))
        return {
            "bench_process": t.user + t.system,
            "workers": sum(tree_cpu(w.proc.pid) for w in self.workers),
            "workers_parent": sum(_proc_cpu(w.proc.pid) for w in self.workers),
            "sandbox": tree_cpu(sandbox) if sandbox else 0.0,
            "postgresql": servers["postgres"],
            "redis": servers["redis-server"],
            "machine": machine_busy(),
        }

    @staticmethod
    def per_notification_ms(spans: list[tuple[dict[str, float], dict[str, float]]], n: int) -> dict[str, Any]:
        """CPU ms per notification over one or more measured spans (snapshots before, after), added up."""
        if not spans or not n or not all(before and after for before, after in spans):
            return {}
        delta = {k: sum(after[k] - before[k] for before, after in spans) for k in spans[0][0]}
        known = sum(v for k, v in delta.items() if k not in ("machine", "workers_parent"))
        delta["other"] = max(delta["machine"] - known, 0.0)
        return {f"{k}_ms": round(v * 1000 / n, 2) for k, v in delta.items()}
