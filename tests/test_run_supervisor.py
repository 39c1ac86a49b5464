"""`make run`'s supervisor (scripts/supervise.py) on a tiny fake product: a "worker" with a pool child, a steady
"web" process and a crash-looping one. A SIGKILLed child is restarted (its pool child does not survive it), the others
keep running, a crash loop backs off, and stopping (in-process, or SIGTERM/SIGINT to the supervisor process) leaves
no process of any group behind."""
from __future__ import annotations

import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

spec = importlib.util.spec_from_file_location("supervise", ROOT / "scripts" / "supervise.py")
supervise = sys.modules.setdefault("supervise", importlib.util.module_from_spec(spec))
spec.loader.exec_module(supervise)

# A "worker": forks a pool child (same process group, like Celery's prefork pool), writes both pids, sleeps.
WORKER = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()} {child.pid}\\n")
    time.sleep(600)
""")
# Ignores SIGTERM, so stopping must escalate to SIGKILL.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(predicate, timeout: float = 15.0, tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def pids_written(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines() if line.strip()]


def test_a_killed_child_is_restarted_without_orphans_and_the_others_keep_running(tmp_path):
    pids = tmp_path / "worker.pids"
    out = io.StringIO()
    sup = supervise.Supervisor(
        [("worker", [sys.executable, "-c", WORKER, str(pids)]),
         ("web", [sys.executable, "-c", "import time; time.sleep(600)"]),
         ("stubborn", [sys.executable, "-c", STUBBORN])],
        backoff_initial=0.2, stop_timeout=1.0, out=out)
    groups: set[int] = set()
    try:
        sup.start_all()
        worker, web, stubborn = sup.children
        for child in sup.children:
            assert os.getpgid(child.proc.pid) == child.proc.pid  # each child leads its own group
            groups.add(child.proc.pid)
        wait_until(lambda: pids_written(pids))
        [(leader, pool_child)] = pids_written(pids)
        assert os.getpgid(pool_child) == leader
        web_pid = web.proc.pid

        os.kill(leader, signal.SIGKILL)
        wait_until(lambda: len(pids_written(pids)) == 2, tick=sup.poll)  # restarted: the new one wrote its pids

        text = out.getvalue()
        assert "worker が終了しました（シグナル SIGKILL）。0.2秒後に再起動します。" in text
        assert "worker を再起動しました（1回目）。" in text
        assert not alive(pool_child), "the killed worker's pool child was left running"
        assert not supervise.group_members(leader)
        assert worker.proc.pid != leader and alive(worker.proc.pid)
        assert web.proc.pid == web_pid and alive(web_pid)  # the web server kept running
        groups.add(worker.proc.pid)
        everything = [pid for pair in pids_written(pids) for pid in pair] + [web_pid, stubborn.proc.pid]
    finally:
        sup.stop()

    assert all(not supervise.group_members(g) for g in groups), {g: supervise.group_members(g) for g in groups}
    assert not [pid for pid in everything if alive(pid)]
    sup.poll()  # stopped: nothing is restarted any more
    assert all(child.proc.poll() is not None for child in sup.children)


def test_a_crash_loop_backs_off(tmp_path):
    out = io.StringIO()
    sup = supervise.Supervisor([("beat", [sys.executable, "-c", "raise SystemExit(3)"])],
                               backoff_initial=0.1, backoff_max=0.4, stop_timeout=1.0, out=out)
    try:
        sup.start_all()
        wait_until(lambda: out.getvalue().count("終了しました") >= 5, timeout=20, tick=sup.poll)
    finally:
        sup.stop()
    delays = [float(d) for d in re.findall(r"（終了コード 3）。([\d.]+)秒後に再起動します", out.getvalue())]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.4, 0.4]


RUNNER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from supervise import Supervisor
    specs = [("worker", [sys.executable, "-c", sys.argv[3], sys.argv[2]]),
             ("stubborn", [sys.executable, "-c", sys.argv[4]])]
    sup = Supervisor(specs, backoff_initial=0.2, stop_timeout=1.0)
    sup.install_signal_handlers(on_stop=lambda: print("== 停止しています...", flush=True))
    sup.start_all()
    print("groups", " ".join(str(c.proc.pid) for c in sup.children), flush=True)
    sup.run(interval=0.1)
    print("stopped", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signalling_the_supervisor_stops_every_group(tmp_path, sig):
    """What Ctrl-C / `docker stop` / a service manager does to `make run`: nothing of any group survives, including
    a child that ignores SIGTERM and the pool child of the worker."""
    pids = tmp_path / "worker.pids"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(ROOT / "scripts"), str(pids), WORKER, STUBBORN],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("groups"), first
        groups = [int(g) for g in first.split()[1:]]
        wait_until(lambda: pids_written(pids))
        everything = [pid for pair in pids_written(pids) for pid in pair] + groups
        assert all(alive(pid) for pid in everything)

        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, output
        assert "== 停止しています..." in output and "stopped" in output
        assert not [pid for pid in everything if alive(pid)]
        assert all(not supervise.group_members(g) for g in groups)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for g in locals().get("groups", []):
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_children_die_with_a_killed_supervisor(tmp_path):
    """Even SIGKILL of the supervisor (no chance to clean up) does not leave the children running: each gets SIGTERM
    from the kernel (PR_SET_PDEATHSIG); Celery and gunicorn then stop their own pool children."""
    if supervise._prctl is None:
        pytest.skip("no prctl on this platform")
    pids = tmp_path / "worker.pids"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(ROOT / "scripts"), str(pids), WORKER,
                             "import time; time.sleep(600)"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    groups = []
    try:
        groups = [int(g) for g in proc.stdout.readline().split()[1:]]
        wait_until(lambda: pids_written(pids))
        [(leader, pool_child)] = pids_written(pids)
        proc.kill()
        proc.wait(10)
        wait_until(lambda: not alive(leader) and not alive(groups[1]))
    finally:
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
