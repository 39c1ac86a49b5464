"""Start the real sandbox (subprocess, real mutual TLS) from tests and benchmarks.

    from hersys_client.sandbox.testing import running_sandbox

    with running_sandbox(tmp_path) as sb:
        client = sb.client_factory()          # HersysClient with the dev client certificate
        receipt = client.submit(bundle, "uuid:1")
        sb.set_faults(fail_next=2)            # POST /_sandbox/faults
        sb.received()["notifications"]        # GET /_sandbox/received
        sb.restart()                          # same port, same database

Plain Python (no pytest, no Django), so Django tests, benchmarks and scripts can all use it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..client import HersysClient
from ..devpki import DevPKI, ensure_dev_pki

_READY = re.compile(r"HER-SYS sandbox listening on (https://\S+)")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SandboxStartError(RuntimeError):
    pass


@dataclass
class SandboxHandle:
    """A running sandbox subprocess and what a test needs to talk to it."""

    url: str
    pki: DevPKI
    db_path: Path
    log_path: Path
    client_id: str
    client_secret: str
    host: str
    port: int
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def control_url(self) -> str:
        return f"{self.url}/_sandbox"

    def client_factory(self, **overrides: Any) -> HersysClient:
        """A HersysClient for this sandbox; keyword arguments override the constructor's defaults."""
        kwargs: dict[str, Any] = {
            "base_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "cert": self.pki.client_pair,
            "ca_path": str(self.pki.ca_cert),
            "timeout": 5.0,
        }
        kwargs.update(overrides)
        return HersysClient(**kwargs)

    def control_client(self, timeout: float = 10.0) -> httpx.Client:
        """Plain httpx client with the dev client certificate (for control endpoints and raw requests)."""
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return httpx.Client(base_url=self.url, verify=ctx, timeout=timeout)

    def _control(self, method: str, path: str, json: Any = None) -> Any:
        with self.control_client() as c:
            r = c.request(method, f"/_sandbox/{path}", json=json)
            r.raise_for_status()
            return r.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """latency_ms, fail_next, rate_limit_next, retry_after, timeout_next, accepted_versions, expire_tokens."""
        return self._control("POST", "faults", faults)

    def received(self, include_bundles: bool = True) -> dict[str, Any]:
        return self._control("GET", f"received?include_bundles={int(include_bundles)}")

    def requests(self, include_bodies: bool = True, idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """Every POST /fhir/Bundle the sandbox received, in order, with its raw body as `body` (bytes)."""
        import base64
        from urllib.parse import urlencode

        query = {"include_bodies": int(include_bodies)}
        if idempotency_key is not None:
            query["idempotency_key"] = idempotency_key
        rows = self._control("GET", f"requests?{urlencode(query)}")["requests"]
        for row in rows:
            if "body_base64" in row:
                row["body"] = base64.b64decode(row.pop("body_base64"))
        return rows

    def reset(self) -> None:
        self._control("POST", "reset", {})

    # -- process control -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            raise SandboxStartError("sandbox already running")
        cmd = [
            sys.executable, "-m", "hersys_client.sandbox",
            "--host", self.host, "--port", str(self.port),
            "--pki-dir", str(self.pki.dir), "--db", str(self.db_path),
            "--client-id", self.client_id, "--client-secret", self.client_secret,
            *self.extra_args,
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child; closed below
        try:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=str(_PROJECT_ROOT))
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                m = _READY.search(fh.read().decode("utf-8", "replace"))
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        tail = self.log_path.read_text("utf-8", "replace")[-2000:]
        raise SandboxStartError(f"sandbox did not start; log tail:\n{tail}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after `timeout`). Returns the exit code."""
        p = self.process
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def restart(self) -> None:
        """Stop and start again on the same port with the same database (tokens are lost, data is not)."""
        self.stop()
        self.start()


@contextmanager
def running_sandbox(
    tmpdir: str | os.PathLike[str],
    *,
    pki_dir: str | os.PathLike[str] | None = None,
    client_id: str = "test-client",
    client_secret: str = "test-secret",  # noqa: S107 - test credentials
    host: str = "127.0.0.1",
    port: int = 0,
    extra_args: Sequence[str] = (),
) -> Iterator[SandboxHandle]:
    """Run the sandbox for the duration of the block; `tmpdir` holds its database, log (and PKI by default).

    `port=0` picks a free port; the first start fixes it, so `restart()` comes back on the same one.
    """
    base = Path(tmpdir)
    base.mkdir(parents=True, exist_ok=True)
    pki = ensure_dev_pki(pki_dir if pki_dir is not None else base / "pki")
    handle = SandboxHandle(
        url="",
        pki=pki,
        db_path=base / "sandbox.sqlite3",
        log_path=base / "sandbox.log",
        client_id=client_id,
        client_secret=client_secret,
        host=host,
        port=port,
        extra_args=tuple(extra_args),
    )
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
