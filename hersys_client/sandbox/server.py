"""The HER-SYS sandbox server: stdlib ThreadingHTTPServer over mutual TLS (docs/contracts.md §3).

Run: ``python -m hersys_client.sandbox --host 127.0.0.1 --port 8443 --pki-dir DIR --db FILE``.
Prints one line "HER-SYS sandbox listening on https://HOST:PORT" when ready; SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .store import Conflict, KeyReused, Rejected, SandboxStore
from .validation import DEFAULT_ACCEPTED_VERSIONS, Issue, operation_outcome, validate_bundle

log = logging.getLogger("hersys_client.sandbox")

DEFAULT_CLIENT_ID = "hersys-assist"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - development sandbox only
READY_PREFIX = "HER-SYS sandbox listening on "
FHIR_JSON = "application/fhir+json; charset=utf-8"
_MAX_COUNT = 1_000_000


@dataclass
class Faults:
    """Switches set through POST /_sandbox/faults (in memory; reset by /_sandbox/reset and by a restart)."""

    latency_ms: int = 0
    fail_next: int = 0
    rate_limit_next: int = 0
    retry_after: int = 1
    timeout_next: int = 0
    accepted_versions: list[str] = field(default_factory=lambda: list(DEFAULT_ACCEPTED_VERSIONS))


@dataclass
class Config:
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_ttl: int = 3600
    max_body_bytes: int = 5 * 1024 * 1024
    hang_seconds: float = 60.0
    io_timeout: float = 30.0
    accepted_versions: tuple[str, ...] = DEFAULT_ACCEPTED_VERSIONS
    control_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


class BadFaults(ValueError):
    pass


class Sandbox:
    """Everything shared by the request threads: config, store, fault switches, issued tokens."""

    def __init__(self, config: Config, store: SandboxStore) -> None:
        self.config = config
        self.store = store
        self._lock = threading.Lock()
        self._faults = self._default_faults()
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry; in memory: a restart revokes them
        self._release = threading.Event()  # set to end every hanging request now (reset, shutdown)

    def _default_faults(self) -> Faults:
        return Faults(accepted_versions=list(self.config.accepted_versions))

    # -- tokens ----------------------------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}  # drop expired ones
            self._tokens[token] = now + self.config.token_ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- faults ----------------------------------------------------------------------------------------------------
    def faults(self) -> Faults:
        with self._lock:
            return Faults(**asdict(self._faults))

    def update_faults(self, data: Any) -> Faults:
        if not isinstance(data, dict):
            raise BadFaults("faults must be a JSON object")
        allowed = set(Faults.__dataclass_fields__) | {"expire_tokens"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise BadFaults(f"unknown fault switches: {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        limits = {"latency_ms": 600_000, "retry_after": 86_400}
        for name in ("latency_ms", "fail_next", "rate_limit_next", "retry_after", "timeout_next"):
            if name in data:
                value = data[name]
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limits.get(name, _MAX_COUNT):
                    raise BadFaults(f"{name} must be an integer between 0 and {limits.get(name, _MAX_COUNT)}")
                changes[name] = value
        if "accepted_versions" in data:
            versions = data["accepted_versions"]
            if not isinstance(versions, list) or not all(isinstance(v, str) and 0 < len(v) <= 40 for v in versions):
                raise BadFaults("accepted_versions must be a list of version strings")
            changes["accepted_versions"] = list(versions)
        if data.get("expire_tokens") is True:
            self.revoke_tokens()
        with self._lock:
            for name, value in changes.items():
                setattr(self._faults, name, value)
            return Faults(**asdict(self._faults))

    def take_fault(self) -> str | None:
        """Consume one pending fault for an API request: "timeout", "fail" or "rate_limit"."""
        with self._lock:
            f = self._faults
            if f.timeout_next > 0:
                f.timeout_next -= 1
                return "timeout"
            if f.fail_next > 0:
                f.fail_next -= 1
                return "fail"
            if f.rate_limit_next > 0:
                f.rate_limit_next -= 1
                return "rate_limit"
        return None

    def hang(self) -> None:
        with self._lock:
            release = self._release
        release.wait(self.config.hang_seconds)

    def reset(self) -> None:
        self.store.reset()
        with self._lock:
            self._faults = self._default_faults()
            self._release.set()
            self._release = threading.Event()

    def release_all(self) -> None:
        with self._lock:
            self._release.set()

    def control_allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped  # type: ignore[union-attr]
        return ip.is_loopback or any(ip in net for net in self.config.control_networks)


class _Respond(Exception):
    """Raised anywhere in a handler to send an answer and stop."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
                 *, close: bool = False, content_type: str = "application/json; charset=utf-8") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.close = close
        self.content_type = content_type


_HISTORY = re.compile(r"/fhir/Bundle/(HS-[0-9]{10})/_history/([0-9]{1,9})")
#: OperationOutcome details code of a reused idempotency key (the client tells it from a version conflict by it).
KEY_REUSED_CODE = "idempotency-key-reused"


def _key_reused(message: str) -> _Respond:
    body = operation_outcome([Issue("conflict", message)])
    body["issue"][0]["details"] = {"coding": [{"system": "urn:hersys-assist:issue", "code": KEY_REUSED_CODE}],
                                   "text": message}
    return _Respond(409, body, content_type=FHIR_JSON)


def _outcome(status: int, code: str, diagnostics: str, **kw: Any) -> _Respond:
    return _Respond(status, operation_outcome([Issue(code, diagnostics)]), content_type=FHIR_JSON, **kw)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HERSYS-Sandbox/1.0"
    sys_version = ""
    server: SandboxHTTPServer

    # Every method goes through one dispatcher; http.server answers 501 for methods without do_*.
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    @property
    def app(self) -> Sandbox:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Only method, path and status: never bodies (patient data stays out of logs).
        log.info("%s %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except _Respond as r:
            self._send(r.status, r.body, r.headers, close=r.close, content_type=r.content_type)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception:  # never let one request take the server down
            log.error("internal error on %s %s\n%s", method, urlsplit(self.path).path, traceback.format_exc())
            try:
                self._send(500, operation_outcome([Issue("exception", "サンドボックス内部でエラーが発生しました。")]),
                           close=True, content_type=FHIR_JSON)
            except OSError:
                self.close_connection = True

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        body = self._read_body()  # always, so a keep-alive connection never holds an unread body
        if path.startswith("/_sandbox/"):
            self._control(method, path, parse_qs(url.query), body)
            return
        if path == "/oauth2/token":
            self._require(method, "POST")
            self._latency()
            self._token(body)
            return
        if path == "/fhir/Bundle" or path.startswith("/fhir/Bundle/"):
            if method == "POST" and path == "/fhir/Bundle":  # the raw bytes of every try, before any fault
                self.app.store.record_request(self.headers.get("Idempotency-Key", "").strip()[:200], body)
            self._latency()
            self._faults()
            self._authenticate()
            if path == "/fhir/Bundle" and method == "GET":
                try:
                    query = parse_qs(url.query, keep_blank_values=True, max_num_fields=20)
                except ValueError:
                    raise _outcome(400, "structure", "検索条件が多すぎます。") from None
                self._search(query)
            elif path == "/fhir/Bundle":
                self._require(method, "POST")
                self._submit(body)
            elif m := _HISTORY.fullmatch(path):
                self._require(method, "GET")
                document = self.app.store.document(m.group(1), int(m.group(2)))
                if document is None:
                    raise _outcome(404, "not-found", "指定された受付番号・版の届出はありません。")
                self._send(200, document, content_type=FHIR_JSON)
            else:
                self._require(method, "GET")
                receipt_id = path[len("/fhir/Bundle/"):]
                receipt = self.app.store.receipt(receipt_id) if len(receipt_id) <= 40 else None
                if receipt is None:
                    raise _outcome(404, "not-found", "指定された受付番号の届出はありません。")
                self._send(200, receipt, content_type=FHIR_JSON)
            return
        raise _outcome(404, "not-found", "そのURLはありません。")

    # -- request plumbing ------------------------------------------------------------------------------------------
    def _require(self, method: str, expected: str) -> None:
        if method != expected:
            raise _Respond(405, operation_outcome([Issue("not-supported", "このURLではそのメソッドは使えません。")]),
                           {"Allow": expected}, content_type=FHIR_JSON)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise _outcome(411, "structure", "Content-Length を指定してください（chunked は未対応です）。", close=True)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not re.fullmatch(r"[0-9]{1,12}", raw.strip()):
            raise _outcome(400, "structure", "Content-Length が不正です。", close=True)
        length = int(raw)
        if length > self.app.config.max_body_bytes:
            if length <= 4 * self.app.config.max_body_bytes:
                self._discard(length)  # a client still writing its body would otherwise miss the answer
            raise _outcome(413, "too-costly",
                           f"送信データが大きすぎます（上限 {self.app.config.max_body_bytes} バイト）。", close=True)
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise ConnectionError("short body")
        return body

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 64 * 1024))
            if not chunk:
                return
            length -= len(chunk)

    def _latency(self) -> None:
        ms = self.app.faults().latency_ms
        if ms:
            time.sleep(ms / 1000)

    def _faults(self) -> None:
        fault = self.app.take_fault()
        if fault == "timeout":
            self.app.hang()
            self.close_connection = True
            raise ConnectionError("simulated timeout")  # drop the connection without an answer
        if fault == "fail":
            raise _outcome(503, "transient", "HER-SYS は一時的に利用できません（サンドボックスの障害設定）。")
        if fault == "rate_limit":
            retry_after = self.app.faults().retry_after
            raise _Respond(429, operation_outcome([Issue("throttled", "送信が多すぎます。時間をおいて再送してください。")]),
                           {"Retry-After": str(retry_after)}, content_type=FHIR_JSON)

    def _authenticate(self) -> None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not self.app.token_valid(token.strip()):
            raise _Respond(401, operation_outcome([Issue("login", "アクセストークンが無効か期限切れです。")]),
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'}, content_type=FHIR_JSON)

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _outcome(400, "structure", "送信データが正しい JSON（UTF-8）ではありません。") from None

    # -- endpoints -------------------------------------------------------------------------------------------------
    def _token(self, body: bytes) -> None:
        invalid_client = _Respond(401, {"error": "invalid_client"},
                                  {"WWW-Authenticate": 'Basic realm="hersys-sandbox"'})
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client
        try:
            client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_client from None
        cfg = self.app.config
        ok_id = hmac.compare_digest(client_id.encode(), cfg.client_id.encode())
        ok_secret = hmac.compare_digest(secret.encode(), cfg.client_secret.encode())
        if not (sep and ok_id and ok_secret):
            raise invalid_client
        try:
            form = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise _Respond(400, {"error": "invalid_request"}) from None
        if form.get("grant_type") != ["client_credentials"]:
            raise _Respond(400, {"error": "unsupported_grant_type"})
        token = self.app.issue_token()
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": cfg.token_ttl},
                   {"Cache-Control": "no-store"})

    def _submit(self, body: bytes) -> None:
        key = self.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > 200 or not key.isascii() or not key.isprintable():
            raise _outcome(400, "required", "Idempotency-Key ヘッダ（1〜200文字の ASCII）が必要です。")
        bundle = self._json(body)
        try:
            stored = self.app.store.replay(key, bundle)
        except KeyReused as exc:
            raise _key_reused(str(exc)) from None
        if stored is not None:  # before validation: a replay answers as the first time, whatever changed since
            self._send(stored.http_status, stored.body, {"Idempotent-Replayed": "true"}, content_type=FHIR_JSON)
            return
        submission, issues = validate_bundle(bundle, self.app.faults().accepted_versions)
        if submission is None:
            raise _Respond(422, operation_outcome(issues), content_type=FHIR_JSON)
        try:
            answer = self.app.store.accept(
                key=key, identifier=submission.identifier, revision=submission.revision,
                qr_status=submission.qr_status, bundle=bundle, today=date.today(),
            )
        except KeyReused as exc:
            raise _key_reused(str(exc)) from None
        except Conflict as exc:
            raise _outcome(409, "conflict", exc.message_ja) from None
        except Rejected as exc:
            raise _outcome(422, "business-rule", exc.message_ja) from None
        headers = {"Location": f"/fhir/Bundle/{answer.body['receipt_id']}"}
        if answer.replayed:
            headers["Idempotent-Replayed"] = "true"
        self._send(answer.http_status, answer.body, headers, content_type=FHIR_JSON)

    def _search(self, query: dict[str, list[str]]) -> None:
        """What HER-SYS holds: by the notification's stable identifier (`?identifier=<Bundle.identifier.value>`,
        or `system|value`), or everything of one facility changed since a moment (`?organization=<code>&since=
        <ISO 8601>`): {"total": n, "notifications": [...]} (empty when nothing is held)."""
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1].strip() if values else None

        identifier, organization, since = one("identifier"), one("organization"), one("since")
        if identifier and "|" in identifier:
            identifier = identifier.rsplit("|", 1)[1]
        if not identifier and not organization:
            raise _outcome(400, "required", "identifier か organization のどちらかを指定してください。")
        if since is not None:
            try:
                when = datetime.fromisoformat(since)
            except ValueError:
                raise _outcome(400, "value", "since は ISO 8601 の日時で指定してください。") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            since = when.astimezone(UTC).isoformat(timespec="milliseconds")
        found = self.app.store.holdings(identifier=identifier or None, organization=organization or None,
                                        since=since)
        self._send(200, {"total": len(found), "notifications": found}, content_type=FHIR_JSON)

    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        if not self.app.control_allowed(self.client_address[0]):
            raise _Respond(403, {"error": "control endpoints are available from loopback only"})
        if path == "/_sandbox/health":
            self._require(method, "GET")
            self._send(200, {"status": "ok"})
        elif path == "/_sandbox/received":
            self._require(method, "GET")
            include = query.get("include_bundles", ["1"])[-1] not in ("0", "false")
            ident = query.get("bundle_identifier", [None])[-1]
            self._send(200, self.app.store.received(include_bundles=include, bundle_identifier=ident))
        elif path == "/_sandbox/requests":
            self._require(method, "GET")
            include = query.get("include_bodies", ["1"])[-1] not in ("0", "false")
            key = query.get("idempotency_key", [None])[-1]
            self._send(200, self.app.store.requests(include_bodies=include, idempotency_key=key))
        elif path == "/_sandbox/faults":
            if method == "GET":
                self._send(200, asdict(self.app.faults()))
                return
            self._require(method, "POST")
            data = self._json(body) if body else {}
            try:
                faults = self.app.update_faults(data)
            except BadFaults as exc:
                raise _Respond(400, {"error": str(exc)}) from None
            self._send(200, asdict(faults))
        elif path == "/_sandbox/reset":
            self._require(method, "POST")
            self.app.reset()
            self._send(200, {"status": "reset"})
        else:
            raise _Respond(404, {"error": "unknown control endpoint"})

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, *,
              close: bool = False, content_type: str = "application/json; charset=utf-8") -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class SandboxHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose TLS handshake runs in the request thread (a silent client cannot block accept)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Sandbox, ssl_context: ssl.SSLContext) -> None:
        self.app = app
        self.ssl_context = ssl_context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.app.config.io_timeout)
        try:  # answers are written as headers + body; without this, Nagle + delayed ACK add ~40 ms per request
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:  # no/untrusted client certificate, plain HTTP, port scan
            log.info("TLS handshake with %s refused: %s", client_address[0], exc.__class__.__name__)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s ended with an error: %s", client_address[0], sys.exc_info()[1])


def server_ssl_context(ca_cert: Path, server_cert: Path, server_key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(server_cert), keyfile=str(server_key))
    ctx.load_verify_locations(cafile=str(ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate signed by our CA, no connection
    return ctx


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hersys_client.sandbox", description="HER-SYS WebAPI sandbox")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443, help="0 picks a free port (printed in the ready line)")
    p.add_argument("--pki-dir", default="var/pki", help="dev PKI directory (created with devpki if missing)")
    p.add_argument("--db", default="var/hersys-sandbox.sqlite3", help="SQLite file; data survives restarts")
    p.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    p.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    p.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    p.add_argument("--max-body-bytes", type=int, default=5 * 1024 * 1024)
    p.add_argument("--hang-seconds", type=float, default=60.0, help="how long a timeout_next fault hangs")
    p.add_argument("--accepted-versions", default=",".join(DEFAULT_ACCEPTED_VERSIONS))
    p.add_argument("--allow-control-from", action="append", default=[], metavar="CIDR",
                   help="extra networks allowed to use /_sandbox/* (loopback always is); e.g. a compose network")
    p.add_argument("--quiet", action="store_true", help="no request log")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..devpki import ensure_dev_pki  # imported here: cryptography is only needed to create the PKI

    pki = ensure_dev_pki(args.pki_dir)
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    config = Config(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        max_body_bytes=args.max_body_bytes,
        hang_seconds=args.hang_seconds,
        accepted_versions=tuple(v.strip() for v in args.accepted_versions.split(",") if v.strip()),
        control_networks=tuple(ipaddress.ip_network(c, strict=False) for c in args.allow_control_from),
    )
    store = SandboxStore(args.db)
    app = Sandbox(config, store)
    server = SandboxHTTPServer((args.host, args.port), app, server_ssl_context(pki.ca_cert, pki.server_cert,
                                                                              pki.server_key))

    def stop(signum: int, frame: Any) -> None:
        app.release_all()
        # shutdown() waits for serve_forever() to return, which runs in this very thread: call it from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    print(f"{READY_PREFIX}https://{shown}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        store.close()
        log.info("HER-SYS sandbox stopped")
    return 0
