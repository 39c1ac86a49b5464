"""A small process supervisor for `make run` (scripts/run.py): keeps each child running, never leaves orphans.

- Every child starts in its own session, hence its own process group (pgid = its pid), so the group also holds the
  processes it forks (Celery's pool children, gunicorn's workers).
- A child that exits while we are not stopping is restarted after a backoff (1 s, doubling up to 30 s; back to 1 s
  once a run lasted a minute), and the console says so in Japanese. What is left of its group (pool children of a
  worker killed with SIGKILL) is killed first. The other children keep running.
- stop(): SIGTERM to every child (it stops its own children), then SIGKILL to whatever is still in any of the groups
  after the timeout, including groups whose leader already exited. Children also get SIGTERM if the supervisor
  itself dies (Linux PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TextIO

_HAVE_PROC = os.path.isdir("/proc/self")
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux: no parent-death signal
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec: no imports, no locks
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, from /proc (Linux)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"シグナル {signal.Signals(-returncode).name}"
        except ValueError:
            return f"シグナル {-returncode}"
    return f"終了コード {returncode}"


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None  # set while waiting to restart


class Supervisor:
    def __init__(self, specs: list[tuple[str, list[str]]], *, cwd=None, env: dict | None = None,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0, stable_after: float = 60.0,
                 stop_timeout: float = 10.0, out: TextIO | None = None):
        self.children = [Child(name, list(cmd)) for name, cmd in specs]
        self.cwd = cwd
        self.env = env
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.out = out
        self.stopping = False

    # -- output --------------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stderr, flush=True)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        if self.stopping:
            return
        child.proc = subprocess.Popen(child.cmd, cwd=self.cwd, env=self.env, start_new_session=True,
                                      preexec_fn=_die_with_parent if _prctl is not None else None)
        child.started_at = time.monotonic()
        child.restart_at = None
        if self.stopping:  # a signal arrived while we were starting it: stop() has already run
            self._kill_group(child.proc.pid, signal.SIGKILL)
            child.proc.wait()

    def poll(self) -> None:
        """Notice children that exited and restart the ones whose backoff has run out. Call it every ~0.5 s."""
        if self.stopping:
            return
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._start(child)
                    if not self.stopping:
                        self.say(f"{child.name} を再起動しました（{child.restarts}回目）。")
                continue
            if child.proc is None or child.proc.poll() is None:
                continue
            self._kill_group(child.proc.pid, signal.SIGKILL)  # its pool children must not outlive it
            self._wait_group_empty(child.proc.pid, 2.0)
            ran = now - child.started_at
            if ran >= self.stable_after or child.backoff == 0:
                child.backoff = self.backoff_initial
            else:
                child.backoff = min(self.backoff_max, child.backoff * 2)
            child.restart_at = now + child.backoff
            self.say(f"{child.name} が終了しました（{describe_exit(child.proc.returncode)}）。"
                     f"{child.backoff:g}秒後に再起動します。")

    def stop(self) -> None:
        """SIGTERM every child, wait up to stop_timeout, then SIGKILL what remains of every group. Idempotent."""
        if self.stopping:
            return
        self.stopping = True
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                # The leader only: a Celery worker's warm shutdown finishes its running tasks and then stops its own
                # pool; a SIGTERM to the pool children themselves would kill those tasks mid-send.
                child.proc.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every child's group, leader gone or not (a second Ctrl-C, or the end of stop())."""
        self.stopping = True
        for child in self.children:
            if child.proc is None:
                continue
            self._kill_group(child.proc.pid, signal.SIGKILL)
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self._wait_group_empty(child.proc.pid, 2.0)

    def run(self, interval: float = 0.5) -> None:
        while not self.stopping:
            self.poll()
            time.sleep(interval)

    def install_signal_handlers(self, on_stop=None) -> None:
        """SIGINT/SIGTERM stop everything; a second one kills at once."""

        def handler(signum, frame):
            if self.stopping:
                self.kill_all()
                return
            if on_stop is not None:
                on_stop()
            self.stop()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        # Once a group is empty and its leader reaped, its number may belong to somebody else: signal only a group
        # that still has members (they keep the number from being reused).
        if _HAVE_PROC and not group_members(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def _wait_group_empty(pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while _HAVE_PROC and group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
