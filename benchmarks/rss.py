"""Peak resident memory (Linux /proc VmHWM) of a process tree: a pool's children count, each at its own peak."""
from __future__ import annotations

from pathlib import Path

from .cpu import _children


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_peak_rss_mb(pid: int) -> float | None:
    """Sum of the peak RSS of a process and its live descendants, in MB (an upper bound of the tree's peak: the
    children's peaks need not coincide; shared pages are counted in each). None where /proc is missing."""
    if not Path("/proc").exists():
        return None
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += peak_rss_kb(p)
        todo += _children(p)
    return round(total / 1024, 1)


def beat_peak_rss_mb(env, seconds: float = 4.0) -> float | None:
    """Peak RSS of a Celery beat process of this run (its own schedule file), after `seconds` of running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from .env import ROOT

    with open(env.tmp / "beat.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assist_portal.celery", "beat", "-l", "WARNING",
             "-s", str(env.tmp / "celerybeat-schedule")],
            cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(seconds)
            return tree_peak_rss_mb(proc.pid) if proc.poll() is None else None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
