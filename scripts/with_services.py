"""Run a command with real PostgreSQL and Redis: the ones on localhost when reachable (as on CI), otherwise
throw-away servers started here in a temporary directory (installing Debian's packages if missing) and stopped
afterwards. Exports DATABASE_URL and REDIS_URL to the command.

    python scripts/with_services.py -- pytest ...
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apt_install(*packages: str) -> None:
    print(f"with_services: installing {' '.join(packages)} from Debian", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=False)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", *packages], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def start_postgres(tmp: str, cleanup: list) -> str:
    if not pg_bin("initdb"):
        apt_install("postgresql")
    port = free_port()
    data = os.path.join(tmp, "pg")
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if run_as:
        shutil.chown(tmp, "postgres")
    subprocess.run(run_as + [pg_bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(run_as + [pg_bin("pg_ctl"), "-D", data, "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1",
                             "-l", os.path.join(tmp, "pg.log"), "-w", "start"], check=True)
    cleanup.append(lambda: subprocess.run(run_as + [pg_bin("pg_ctl"), "-D", data, "-m", "fast", "stop"],
                                          check=False))
    return f"postgres://postgres@127.0.0.1:{port}/hersys"


def start_redis(tmp: str, cleanup: list) -> str:
    if not shutil.which("redis-server"):
        apt_install("redis-server")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    cleanup.append(lambda: (proc.terminate(), proc.wait(10)))
    for _ in range(50):
        if reachable("127.0.0.1", port):
            break
        time.sleep(0.1)
    return f"redis://127.0.0.1:{port}/0"


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    env = dict(os.environ)
    own = env.pop("WITH_SERVICES_OWN", "") == "1"  # force throw-away servers even when localhost has them
    cleanup: list = []
    tmp = tempfile.mkdtemp(prefix="hersys-services-")
    # Two checkouts on one machine (CI beside a developer, two work trees) must not share the test database or
    # the Redis queues: both are named after the checkout's path.
    tag = int(hashlib.sha256(str(Path(__file__).resolve().parent.parent).encode()).hexdigest(), 16)
    try:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = (f"postgres://postgres@127.0.0.1:5432/hersys_{tag % 10**8}"
                                   if not own and reachable("127.0.0.1", 5432) else start_postgres(tmp, cleanup))
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = (f"redis://127.0.0.1:6379/{tag % 16}" if not own and reachable("127.0.0.1", 6379)
                                else start_redis(tmp, cleanup))
        print(f"with_services: DATABASE_URL={env['DATABASE_URL']} REDIS_URL={env['REDIS_URL']}", flush=True)
        return subprocess.call(argv, env=env)
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as exc:  # keep stopping the others
                print(f"with_services: cleanup failed: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
