"""Chaos fixtures: a throw-away Redis we may kill, a sandbox we may stop, real Celery workers we may SIGKILL.

Everything here drives the product through its real interfaces (services, Celery worker subprocesses, the sandbox
over HTTPS with mutual TLS) and judges the outcome only by what ends up in the outbox and in the sandbox.

The chaos tests never touch the machine's shared Redis: the session gets its own `redis-server` on a free port,
and both this process (the on-commit enqueue, `delivery_sweep`) and the worker subprocesses use it. That also keeps
teammates' workers on 6379 from eating our tasks.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import DEMO_SAMPLES, ROOT
from tests.portal.conftest import (
    celery_worker_factory,
    central_admin,
    hospital,
    login,
    make_user,
    physician,
    published,
    sandbox,
    wait_for,
    worker_env,
)

# Fixtures of the portal package, made available to the chaos package (pytest finds them by name here).
PORTAL_FIXTURES = (celery_worker_factory, central_admin, hospital, login, make_user, physician, published, sandbox)

FHIR_SAMPLE = DEMO_SAMPLES / "fhir" / "1100000002.json"

#: How many notifications the scaled chaos runs confirm: small in `make test`, >= 200 in `make chaos` (CHAOS_N=200).
CHAOS_N = int(os.environ.get("CHAOS_N", "30"))
#: Every run's tally, printed again in the terminal summary (`chaos: confirmed=N accepted=N lost=0 duplicated=0`).
CHAOS_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if CHAOS_LINES:
        terminalreporter.section("chaos (counted from the sandbox's own records)")
        for line in CHAOS_LINES:
            terminalreporter.write_line(line)


def chaos_line(confirmed: int, accepted: int, lost: int, duplicated: int) -> str:
    line = f"chaos: confirmed={confirmed} accepted={accepted} lost={lost} duplicated={duplicated}"
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    CHAOS_LINES.append(f"{line}  [{test}]")
    print(line, flush=True)
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A throw-away `redis-server` (no persistence: a restart loses every queued message, like a crash)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _reachable(self.port), timeout=10, interval=0.05)

    def stop(self) -> None:
        if self.running:
            self.proc.kill()  # a crash, not a clean shutdown
            self.proc.wait(10)
        wait_for(lambda: not _reachable(self.port), timeout=10, interval=0.05)

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    def queue_length(self, queue: str = "hersys") -> int:
        return int(self.cli("LLEN", queue) or 0)


@pytest.fixture(scope="session")
def chaos_redis(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("chaos-redis"))
    server.start()
    yield server
    if server.running:
        server.proc.terminate()
        server.proc.wait(10)


def _point_celery_at(url: str) -> None:
    """Make this process's Celery app publish to `url`: close and forget every cached connection/producer pool
    (kombu keeps them in a global registry keyed by connection, so the registry is reset too)."""
    from kombu import pools

    from assist_portal.celery import app

    pools.reset()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def chaos_broker(chaos_redis):
    """The session's throw-away Redis, running and empty, used by this process for the duration of a test."""
    from assist_portal.celery import app

    chaos_redis.start()
    chaos_redis.cli("FLUSHALL")
    original = app.conf.broker_url
    _point_celery_at(chaos_redis.url)
    yield chaos_redis
    chaos_redis.start()  # a test that stopped it must not leave it down for the next one
    _point_celery_at(original)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    """The chaos package's own sandbox (we stop and restart it), with short hangs for `timeout_next`."""
    from hersys_client.sandbox.testing import running_sandbox

    with running_sandbox(tmp_path_factory.mktemp("chaos-sandbox"), extra_args=("--hang-seconds", "5")) as handle:
        yield handle


class Beat:
    """A real `celery beat` process running the product's schedule (the delivery sweeper)."""

    def __init__(self, env: dict, workdir: Path):
        self.log = open(workdir / "beat.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assist_portal.celery", "beat", "-l", "INFO",
             "-s", str(workdir / "celerybeat-schedule"), "--pidfile="],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def log_text(worker) -> str:
    return Path(worker.log.name).read_text("utf-8", "replace")


class Chaos:
    """What a chaos test needs: confirm notifications, run workers/beat, wait on the outbox, judge the sandbox."""

    def __init__(self, *, sandbox, redis, factory, tmp_path, hospital, physician):
        from assist_portal.central.services import definition_publish
        from assist_portal.formdefs.services import definition_import_builtin

        self.sandbox = sandbox
        self.redis = redis
        self.factory = factory
        self.tmp_path = tmp_path
        self.hospital = hospital
        self.physician = physician
        self.app_name = f"chaos-worker-{uuid.uuid4().hex[:12]}"  # PGAPPNAME: find the workers' DB sessions
        self.beats: list[Beat] = []
        self._serial = 0
        definition_publish(definition_import_builtin("2021-03"))

    # -- processes ---------------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict:
        base = {
            "REDIS_URL": self.redis.url,
            "PGAPPNAME": self.app_name,
            "DELIVERY_MAX_ATTEMPTS": "50",  # the chaos windows must not exhaust the retry budget by accident
            "DELIVERY_LEASE_SECONDS": "3",
            "DELIVERY_SWEEP_SECONDS": "1",
            "DELIVERY_SWEEP_GRACE_SECONDS": "0",
            "CELERY_SKIP_CHECKS": "1",
        }
        base.update({k: str(v) for k, v in extra.items()})
        return base

    def worker(self, concurrency: int = 1, wait_ready: bool = True, **env: str):
        worker = self.factory(env=self.env(**env), concurrency=concurrency)
        if wait_ready:
            self.wait_ready(worker)
        return worker

    @staticmethod
    def wait_ready(worker, timeout: float = 30) -> None:
        def ready():
            if worker.proc.poll() is not None:
                raise AssertionError(f"celery worker exited early:\n{log_text(worker)[-3000:]}")
            return " ready." in log_text(worker)

        wait_for(ready, timeout=timeout, interval=0.1)

    def beat(self, **env: str) -> Beat:
        full = worker_env(self.sandbox, self.env(**env))
        beat = Beat(full, self.tmp_path)
        self.beats.append(beat)
        return beat

    def pool_children(self, worker) -> list[int]:
        path = Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def attempt_workers(self, worker) -> list[str]:
        """What `Attempt.worker` says for attempts this worker made: host:pid of the process that ran the task —
        the worker itself with the thread pool (the default), each pool process with prefork."""
        host = socket.gethostname()
        return [f"{host}:{pid}" for pid in (self.pool_children(worker) or [worker.proc.pid])]

    # -- the product's interfaces ------------------------------------------------------------------------------
    def confirm(self, n: int) -> list[int]:
        """Confirm `n` new notifications the way a physician does; returns their delivery ids (outbox rows)."""
        from django.db import transaction

        from assist_portal.notifications import services as nsvc

        bundle = json.loads(FHIR_SAMPLE.read_text(encoding="utf-8"))
        ids = []
        for _ in range(n):
            self._serial += 1
            patient_ref = f"C{os.getpid() % 10000:04d}{self._serial:05d}"
            extract = nsvc.extract_receive(self.hospital, nsvc.ExtractPayload(format="fhir", patient_ref=patient_ref,
                                                                              data=bundle))
            with transaction.atomic():
                notification = nsvc.notification_open_from_extract(extract, self.physician)
            values = dict(notification.values)
            values["report.diagnosis_class"] = "confirmed_patient"
            _, evaluation, delivery = nsvc.notification_confirm(notification, self.physician, values,
                                                                notification.lock_version)
            assert delivery is not None, [m.text_ja for m in evaluation.errors]
            ids.append(delivery.pk)
        return ids

    @staticmethod
    def sweep() -> int:
        from assist_portal.delivery.services import delivery_sweep

        return delivery_sweep()

    # -- observing ---------------------------------------------------------------------------------------------
    @staticmethod
    def statuses(ids) -> dict[int, str]:
        from assist_portal.delivery.models import Delivery

        return dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "status"))

    def wait_status(self, ids, status: str, timeout: float = 40, sweep: bool = False, at_least: int | None = None):
        """Poll until every (or `at_least`) delivery has `status`; `sweep=True` runs the sweeper each round,
        as beat would. Fails with the statuses seen if it never happens."""
        need = len(ids) if at_least is None else at_least
        seen: dict = {}

        def done():
            nonlocal seen
            if sweep:
                self.sweep()
            seen = self.statuses(ids)
            return sum(1 for s in seen.values() if s == status) >= need

        try:
            wait_for(done, timeout=timeout, interval=0.25)
        except AssertionError:
            raise AssertionError(f"waited {timeout}s for {need} × {status}; statuses: {seen}; attempts: "
                                 f"{self.attempt_summary(ids)}") from None

    @staticmethod
    def attempt_summary(ids) -> dict[int, list[tuple]]:
        from assist_portal.delivery.models import Attempt

        out: dict[int, list[tuple]] = {}
        for a in Attempt.objects.filter(delivery_id__in=ids).order_by("delivery_id", "id"):
            out.setdefault(a.delivery_id, []).append((a.number, a.outcome, a.http_status, a.message[:40]))
        return out

    def tally(self, ids=None, *, expected: set[tuple[str, int]] | None = None) -> dict:
        """Count from the sandbox's own records: of the revisions confirmed (the deliveries `ids`, or `expected`
        (stream, sequence) pairs), how many HER-SYS holds (accepted), how many it does not (lost), and how many
        extra filings it holds (notifications nobody confirmed, or a revision accepted under a second key).
        Prints and records the `chaos:` line."""
        from assist_portal.delivery.models import Delivery

        if expected is None:
            expected = set(Delivery.objects.filter(pk__in=ids).values_list("stream", "sequence"))
        received = self.sandbox.received(include_bundles=False)
        stored = {(n["bundle_identifier"], r["revision"]) for n in received["notifications"] for r in n["revisions"]}
        streams = {s for s, _ in expected}
        accepted = len(expected & stored)
        strangers = sum(1 for n in received["notifications"] if n["bundle_identifier"] not in streams)
        duplicated = strangers + max(0, received["idempotency_keys"] - len(stored))
        counts = {"confirmed": len(expected), "accepted": accepted, "lost": len(expected) - accepted,
                  "duplicated": duplicated}
        chaos_line(**counts)
        return counts

    def assert_exactly_once(self, ids, total: int | None = None, tally: bool = True) -> list[dict]:
        """Every delivery accepted, and the sandbox holds exactly one notification with exactly one revision for
        each, under the delivery's idempotency key and with the receipt the outbox recorded; every try under that
        key carried the delivery's frozen bytes. `total` is how many
        notifications the sandbox must hold overall (default: exactly these)."""
        from assist_portal.delivery.models import Delivery

        if total is None and tally:
            self.tally(ids)
        rows = list(Delivery.objects.filter(pk__in=ids).select_related("payload"))
        assert len(rows) == len(ids)
        assert {r.status for r in rows} == {Delivery.Status.ACCEPTED}, self.statuses(ids)
        received = self.sandbox.received(include_bundles=False)
        stored = received["notifications"]
        identifiers = [n["bundle_identifier"] for n in stored]
        assert len(identifiers) == len(set(identifiers)), "the sandbox stored one notification twice"
        assert len(stored) == (len(ids) if total is None else total), [n["bundle_identifier"] for n in stored]
        by_id = {n["bundle_identifier"]: n for n in stored}
        for row in rows:
            note = by_id.get(row.stream)  # the stream is the notification's uuid, the Bundle's identifier
            assert note is not None, f"delivery {row.pk} accepted but missing from HER-SYS"
            assert len(note["revisions"]) == 1, f"delivery {row.pk}: {len(note['revisions'])} revisions stored"
            assert note["revisions"][0]["idempotency_key"] == row.idempotency_key
            assert note["receipt_id"] == row.receipt_id
        assert len({r.receipt_id for r in rows}) == len(rows)
        assert received["idempotency_keys"] == len(stored)  # nothing accepted under a second key
        sent: dict[str, set[str]] = {}  # every try the sandbox saw (failed, timed out, replayed), by key
        for request in self.sandbox.requests(include_bodies=False):
            sent.setdefault(request["idempotency_key"], set()).add(request["sha256"])
        for row in rows:  # every try of a delivery carried exactly its frozen bytes
            assert sent.get(row.idempotency_key) == {row.payload.sha256}, f"delivery {row.pk}: bytes differ"
        return stored

    def terminate_worker_db_sessions(self) -> int:
        """pg_terminate_backend every PostgreSQL session of our workers (as the superuser test connection)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = %s AND pid <> pg_backend_pid()", [self.app_name])
            return cursor.fetchone()[0]

    def worker_db_sessions(self) -> int:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.app_name])
            return cursor.fetchone()[0]

    def close(self) -> None:
        for beat in self.beats:
            beat.stop()


@pytest.fixture
def chaos(chaos_broker, sandbox, celery_worker_factory, tmp_path, hospital, physician, settings):
    """Order matters: the broker switch happens before the worker factory purges queues and starts workers."""
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 0  # the chaos windows are seconds, not minutes
    harness = Chaos(sandbox=sandbox, redis=chaos_broker, factory=celery_worker_factory, tmp_path=tmp_path,
                    hospital=hospital, physician=physician)
    yield harness
    harness.close()
