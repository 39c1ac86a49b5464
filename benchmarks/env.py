"""What a benchmark run owns and must clean up: a dedicated PostgreSQL database, a dedicated Redis database
number, a temporary directory (Django's var dir, logs, the sandbox's PKI and SQLite), the sandbox subprocess
and Celery worker subprocesses.

Order matters: the environment variables are set and the sandbox is started *before* ``django.setup()``, because
the settings module reads DATABASE_URL, REDIS_URL and HERSYS_* once at import.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


class BenchSetupError(RuntimeError):
    pass


def derive_database_url(base_url: str, name: str) -> str:
    """The same server and credentials as `base_url`, another database name."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "postgis"):
        raise BenchSetupError(
            f"benchmarks need PostgreSQL (DATABASE_URL={base_url!r}); run them through `make bench` "
            "or scripts/with_services.py")
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def derive_redis_url(base_url: str, db: int) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("redis", "rediss"):
        raise BenchSetupError(f"benchmarks need Redis (REDIS_URL={base_url!r})")
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _admin_conninfo(database_url: str) -> str:
    """libpq conninfo for the maintenance database `postgres` of the server in `database_url`."""
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))


def _valid_identifier(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise BenchSetupError(f"bad benchmark database name: {name!r}")
    return name


def database_recreate(database_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_valid_identifier(name)}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(database_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_valid_identifier(name)}" WITH (FORCE)')


def redis_flush(redis_url: str) -> None:
    """Empty the benchmark's own Redis database number (never the product's)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def server_versions(database_url: str, redis_url: str) -> dict[str, str]:
    import psycopg
    import redis

    out: dict[str, str] = {}
    try:
        with psycopg.connect(_admin_conninfo(database_url)) as conn:
            out["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # informative only
        out["postgresql"] = f"? ({type(exc).__name__})"
    try:
        client = redis.Redis.from_url(redis_url)
        out["redis"] = str(client.info("server").get("redis_version"))
        client.close()
    except Exception as exc:
        out["redis"] = f"? ({type(exc).__name__})"
    return out


class CeleryWorker:
    """A real `celery worker` subprocess on the `hersys` queue, in its own process group."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, concurrency: int = 1,
                 loglevel: str = "WARNING") -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - handed to the child; closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assist_portal.celery", "worker", "-Q", "hersys",
             "-c", str(concurrency), "-l", loglevel, "-n", f"{name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker answers a remote-control ping (it then consumes its queues too)."""
        from assist_portal.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchSetupError(f"worker {self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            replies = app.control.ping(timeout=0.5) or []
            if any(name.startswith(f"{self.name}@") for reply in replies for name in reply):
                return
        raise BenchSetupError(f"worker {self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown: finish the task in hand
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()


class BenchEnv:
    """Set up with `open()`, torn down with `close()` (also on Ctrl-C / SIGTERM)."""

    def __init__(self, *, db_name: str = "hersys_bench", redis_db: int = 14, sandbox_latency_ms: int = 0,
                 keep_tmp: bool = False, verbose: bool = False) -> None:
        self.db_name = db_name
        self.redis_db = redis_db
        self.sandbox_latency_ms = sandbox_latency_ms
        self.keep_tmp = keep_tmp
        self.verbose = verbose
        self.tmp = Path(tempfile.mkdtemp(prefix="hersys-bench-"))
        self._stack = ExitStack()
        self.workers: list[CeleryWorker] = []
        self.sandbox = None
        self.database_url = ""
        self.redis_url = ""
        self.failed = False

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def open(self) -> BenchEnv:
        base_db = os.environ.get("DATABASE_URL", "")
        base_redis = os.environ.get("REDIS_URL", "")
        if not base_db or not base_redis:
            raise BenchSetupError("DATABASE_URL and REDIS_URL must be set (use `make bench`)")
        self.database_url = derive_database_url(base_db, self.db_name)
        self.redis_url = derive_redis_url(base_redis, self.redis_db)
        if self.redis_url == base_redis:
            raise BenchSetupError("the benchmark's Redis database must differ from REDIS_URL's")
        self.versions = server_versions(self.database_url, self.redis_url)

        from cryptography.fernet import Fernet

        from hersys_client.sandbox.testing import running_sandbox

        self.sandbox = self._stack.enter_context(running_sandbox(self.tmp / "sandbox"))
        if self.sandbox_latency_ms:
            self.sandbox.set_faults(latency_ms=self.sandbox_latency_ms)
        (self.tmp / "var").mkdir()
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "assist_portal.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HERSYS_VAR_DIR": str(self.tmp / "var"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "PATIENT_DATA_KEYS": Fernet.generate_key().decode(),
            "HERSYS_API_URL": self.sandbox.url,
            "HERSYS_PKI_DIR": str(self.sandbox.pki.dir),
            "HERSYS_CLIENT_ID": self.sandbox.client_id,
            "HERSYS_CLIENT_SECRET": self.sandbox.client_secret,
            # A retry, should one happen, must not stall the run for minutes (production: 2 s … 300 s).
            "DELIVERY_BACKOFF_BASE": "0.5",
            "DELIVERY_BACKOFF_CAP": "5",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        })
        database_recreate(self.database_url, self.db_name)
        self._stack.callback(self._drop_database)
        redis_flush(self.redis_url)
        self._stack.callback(self._flush_redis)

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        return self

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        self._stack.close()
        if self.keep_tmp or self.failed:
            print(f"benchmarks: logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> BenchEnv:
        return self.open()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.failed = True
        self.close()

    def _drop_database(self) -> None:
        from django.db import connections

        connections.close_all()
        database_drop(self.database_url, self.db_name)

    def _flush_redis(self) -> None:
        redis_flush(self.redis_url)

    def sandbox_reset(self) -> None:
        """Empty the sandbox's store; re-apply the latency (a reset clears every fault switch)."""
        self.sandbox.reset()
        if self.sandbox_latency_ms:
            self.sandbox.set_faults(latency_ms=self.sandbox_latency_ms)

    # -- workers --------------------------------------------------------------------------------------------------
    def start_workers(self, processes: int, concurrency: int, tag: str) -> list[CeleryWorker]:
        """Start `processes` worker subprocesses with `concurrency` pool children each; wait until ready."""
        env = dict(os.environ)
        env["LOG_LEVEL"] = "WARNING"
        started = []
        for i in range(processes):
            worker = CeleryWorker(f"bench-{tag}-{i}", env, self.tmp / f"worker-{tag}-{i}.log", concurrency)
            self.workers.append(worker)
            started.append(worker)
        for worker in started:
            worker.wait_ready()
        return started

    def stop_workers(self, workers: list[CeleryWorker]) -> None:
        for worker in workers:
            worker.stop()
            if worker in self.workers:
                self.workers.remove(worker)

    def purge_queue(self) -> None:
        from assist_portal.celery import app

        app.control.purge()
