"""httpx client for the HER-SYS WebAPI (docs/contracts.md §3).

OAuth2 client credentials over mutual TLS. The client never retries on its own except for one token refresh on
401: retries with backoff belong to the caller (the delivery worker), which uses `backoff_delay` and the error
taxonomy in `hersys_client.errors`. Every submission carries an Idempotency-Key, so sending the same revision
again after a timeout can never create a second notification.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from os import PathLike
from typing import Any

import httpx

from .errors import (
    HersysError,
    IdempotencyKeyReused,
    PermanentError,
    RetryableError,
    RevisionConflict,
    backoff_delay,
    parse_retry_after,
)

_RECEIPT_ID = re.compile(r"HS-\d{10}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as a header value must be
FHIR_JSON = "application/fhir+json"

StrPath = str | PathLike[str]


@dataclass(frozen=True, slots=True)
class Receipt:
    """HER-SYS's answer for one notification: its receipt id, report date and current status."""

    receipt_id: str
    report_date: date
    status: str  # "accepted" | "withdrawn"
    revision: int
    bundle_identifier: str
    http_status: int = 200  # 201 when this request created the notification

    @property
    def created(self) -> bool:
        return self.http_status == 201

    @classmethod
    def from_json(cls, data: Any, http_status: int) -> Receipt:
        if not isinstance(data, dict):
            raise ValueError("receipt is not an object")
        receipt_id = data.get("receipt_id")
        status = data.get("status")
        revision = data.get("revision")
        identifier = data.get("bundle_identifier")
        if not isinstance(receipt_id, str) or not _RECEIPT_ID.fullmatch(receipt_id):
            raise ValueError("bad receipt_id")
        if status not in ("accepted", "withdrawn"):
            raise ValueError("bad status")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise ValueError("bad revision")
        if not isinstance(identifier, str):
            raise ValueError("bad bundle_identifier")
        return cls(
            receipt_id=receipt_id,
            report_date=date.fromisoformat(str(data.get("report_date"))),
            status=status,
            revision=revision,
            bundle_identifier=identifier,
            http_status=http_status,
        )


@dataclass(frozen=True, slots=True)
class HeldRevision:
    """One revision HER-SYS stored: under which idempotency key and with which content (sha256 of the canonical
    body, the same hash `serialize_bundle` bytes have)."""

    revision: int
    questionnaire_status: str
    idempotency_key: str
    sha256: str
    received_at: str


@dataclass(frozen=True, slots=True)
class Holding:
    """What HER-SYS holds for one notification (by its stable Bundle.identifier)."""

    bundle_identifier: str
    receipt_id: str
    report_date: date
    status: str  # "accepted" | "withdrawn"
    revision: int  # the newest stored
    organization: str
    revisions: tuple[HeldRevision, ...]

    def held(self, revision: int) -> HeldRevision | None:
        return next((r for r in self.revisions if r.revision == revision), None)

    def receipt(self, revision: int | None = None) -> Receipt:
        return Receipt(receipt_id=self.receipt_id, report_date=self.report_date, status=self.status,
                       revision=self.revision if revision is None else revision,
                       bundle_identifier=self.bundle_identifier)

    @classmethod
    def from_json(cls, data: Any) -> Holding:
        if not isinstance(data, dict) or not isinstance(data.get("revisions"), list):
            raise ValueError("holding is not an object with revisions")
        receipt = Receipt.from_json({k: data.get(k) for k in ("receipt_id", "report_date", "status", "revision",
                                                              "bundle_identifier")}, 200)
        revisions = []
        for r in data["revisions"]:
            if not isinstance(r, dict) or not isinstance(r.get("revision"), int):
                raise ValueError("bad revision entry")
            revisions.append(HeldRevision(revision=r["revision"],
                                          questionnaire_status=str(r.get("questionnaire_status", "")),
                                          idempotency_key=str(r.get("idempotency_key", "")),
                                          sha256=str(r.get("sha256", "")), received_at=str(r.get("received_at", ""))))
        return cls(bundle_identifier=receipt.bundle_identifier, receipt_id=receipt.receipt_id,
                   report_date=receipt.report_date, status=receipt.status, revision=receipt.revision,
                   organization=str(data.get("organization") or ""), revisions=tuple(revisions))


class HersysClient:
    """Talks to the HER-SYS WebAPI (or the sandbox). Thread-safe; reuse one instance per worker process."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        cert: tuple[StrPath, StrPath] | None,
        ca_path: StrPath | None,
        timeout: float = 10.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`cert` is (client certificate PEM, private key PEM); `ca_path` the CA bundle that signed the server.

        `cert=None` sends no client certificate (the server will refuse the handshake; useful only in tests).
        `ca_path=None` uses the system trust store.
        """
        ctx = ssl.create_default_context(cafile=str(ca_path) if ca_path is not None else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None:
            ctx.load_cert_chain(certfile=str(cert[0]), keyfile=str(cert[1]))
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            verify=ctx,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "hersys-assist-client/1"},
        )
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0  # time.monotonic() deadline

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HersysClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------------------------------
    def submit(self, bundle: dict[str, Any], idempotency_key: str) -> Receipt:
        """Send a document Bundle (new, update or withdrawal). Same key + same revision is safe to repeat."""
        return self.submit_bytes(serialize_bundle(bundle), idempotency_key)

    def submit_bytes(self, body: bytes, idempotency_key: str) -> Receipt:
        """Send an already serialised document Bundle (UTF-8 JSON) exactly as given, byte for byte.

        For callers that freeze what they send: every retry under one key then carries the same bytes."""
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key or ""):
            raise ValueError("idempotency_key must be 1-200 visible ASCII characters")
        if not isinstance(body, bytes) or not body:
            raise ValueError("body must be non-empty bytes (a serialised Bundle)")
        response = self._authorized(
            "POST",
            "/fhir/Bundle",
            content=body,
            headers={"Idempotency-Key": idempotency_key, "Content-Type": FHIR_JSON},
        )
        return self._receipt(response)

    def status(self, receipt_id: str) -> Receipt:
        """Current status of a notification by HER-SYS receipt id."""
        if not _RECEIPT_ID.fullmatch(receipt_id or ""):
            raise ValueError("receipt_id must look like HS-0123456789")
        return self._receipt(self._authorized("GET", f"/fhir/Bundle/{receipt_id}"))

    def lookup(self, identifier: str) -> Holding | None:
        """What HER-SYS holds for a notification, asked by its stable `Bundle.identifier` (None: nothing). Used to
        reconcile: before giving up on a delivery, and after a restore from backup."""
        if not isinstance(identifier, str) or not identifier.strip() or len(identifier) > 200:
            raise ValueError("identifier must be a non-empty string of at most 200 characters")
        found = self._holdings(self._authorized("GET", "/fhir/Bundle", params={"identifier": identifier}))
        return next((h for h in found if h.bundle_identifier == identifier), None)

    def search(self, organization: str, since: datetime) -> list[Holding]:
        """Every notification of one reporting facility (its Organization code) stored or changed since `since`."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        return self._holdings(self._authorized("GET", "/fhir/Bundle", params={
            "organization": organization, "since": since.isoformat()}))

    def document(self, receipt_id: str, revision: int) -> dict[str, Any]:
        """The document Bundle HER-SYS stored for one revision."""
        if not _RECEIPT_ID.fullmatch(receipt_id or ""):
            raise ValueError("receipt_id must look like HS-0123456789")
        response = self._authorized("GET", f"/fhir/Bundle/{receipt_id}/_history/{int(revision)}")
        _raise_for_retryable(response)
        if response.status_code != 200:
            raise _permanent(response)
        try:
            data = response.json()
        except ValueError:
            raise RetryableError("HER-SYS の応答が読み取れませんでした。", status=200) from None
        if not isinstance(data, dict):
            raise RetryableError("HER-SYS の応答が読み取れませんでした。", status=200)
        return data

    def _holdings(self, response: httpx.Response) -> list[Holding]:
        _raise_for_retryable(response)
        if response.status_code != 200:
            raise _permanent(response)
        try:
            data = response.json()
            return [Holding.from_json(n) for n in data["notifications"]]
        except (ValueError, KeyError, TypeError):
            raise RetryableError("HER-SYS の照会応答が読み取れませんでした。", status=200) from None

    # -- token -----------------------------------------------------------------------------------------------------
    def _access_token(self, *, force: bool = False, stale: str | None = None) -> str:
        with self._token_lock:
            if force and self._token is not None and self._token != stale:
                return self._token  # another thread refreshed it already
            if not force and self._token is not None and time.monotonic() < self._token_expires_at:
                return self._token
            response = self._send(
                "POST",
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
            )
            if response.status_code in (400, 401, 403):
                raise PermanentError(
                    "HER-SYS の認証に失敗しました。クライアントIDとシークレット、クライアント証明書の設定を確認してください。",
                    status=response.status_code,
                )
            _raise_for_retryable(response)
            if response.status_code != 200:
                raise PermanentError(
                    f"HER-SYS の認証で想定外の応答がありました（HTTP {response.status_code}）。",
                    status=response.status_code,
                )
            try:
                payload = response.json()
                token = payload["access_token"]
                expires_in = float(payload.get("expires_in", 300))
                if not isinstance(token, str) or not token:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise RetryableError("HER-SYS の認証応答が読み取れませんでした。", status=response.status_code) from None
            skew = min(60.0, max(expires_in, 0.0) / 10)
            self._token = token
            self._token_expires_at = time.monotonic() + max(expires_in - skew, 0.0)
            return token

    def _authorized(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self._access_token()
        headers = {"Accept": f"{FHIR_JSON}, application/json", **kwargs.pop("headers", {})}
        response = self._send(method, path, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code == 401:  # expired or revoked early: refresh exactly once
            token = self._access_token(force=True, stale=token)
            response = self._send(method, path, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code == 401:
                raise PermanentError(
                    "HER-SYS がアクセストークンを受け付けませんでした。認証設定を確認してください。", status=401
                )
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RetryableError("HER-SYS の応答がタイムアウトしました。時間をおいて再送します。") from None
        except httpx.TransportError:
            raise RetryableError("HER-SYS に接続できませんでした。時間をおいて再送します。") from None

    # -- answers ---------------------------------------------------------------------------------------------------
    def _receipt(self, response: httpx.Response) -> Receipt:
        _raise_for_retryable(response)
        if response.status_code in (200, 201):
            try:
                return Receipt.from_json(response.json(), response.status_code)
            except ValueError:
                # The request may have been stored; repeating it with the same key is safe.
                raise RetryableError(
                    "HER-SYS の応答が読み取れませんでした。時間をおいて再送します。", status=response.status_code
                ) from None
        raise _permanent(response)


def serialize_bundle(bundle: dict[str, Any]) -> bytes:
    """The canonical bytes of a Bundle: UTF-8 JSON, keys sorted, no insignificant whitespace. The same Bundle
    always gives the same bytes (what a caller freezes and hashes)."""
    return json.dumps(bundle, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _raise_for_retryable(response: httpx.Response) -> None:
    code = response.status_code
    if code == 429:
        raise RetryableError(
            "HER-SYS が混み合っています（送信数の制限）。指定された時間の後に再送します。",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=code,
        )
    if code >= 500 or code == 408:
        raise RetryableError(
            f"HER-SYS が一時的に利用できません（HTTP {code}）。時間をおいて再送します。",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=code,
        )


def _permanent(response: httpx.Response) -> PermanentError:
    code = response.status_code
    issues = _diagnostics(response)
    if code == 422:
        head = "HER-SYS が届出を受理しませんでした。内容を確認して修正してください。"
    elif code == 409 and _key_reused(response):
        return IdempotencyKeyReused(
            "HER-SYS は送信を受け付けませんでした。同じ識別キーで以前に別の内容が送信されています"
            "（HER-SYS は以前の内容を保持しています）。", status=code, issues=issues)
    elif code == 409:
        return RevisionConflict(
            "HER-SYS にはこの版以降の届出が既に登録されています（版の競合）。" + ("　" + "／".join(issues[:5]) if issues else ""),
            status=code, issues=issues)
    elif code == 404:
        head = "HER-SYS に該当する届出が見つかりません。"
    elif code == 400:
        head = "HER-SYS が送信データの形式を受け付けませんでした。"
    elif code == 403:
        head = "HER-SYS へのアクセスが拒否されました。"
    else:
        head = f"HER-SYS が要求を受け付けませんでした（HTTP {code}）。"
    message = head + ("　" + "／".join(issues[:5]) if issues else "")
    return PermanentError(message, status=code, issues=issues)


def _key_reused(response: httpx.Response) -> bool:
    try:
        data = response.json()
        return any(c.get("code") == "idempotency-key-reused" for i in data["issue"]
                   for c in (i.get("details") or {}).get("coding", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _diagnostics(response: httpx.Response) -> list[str]:
    """Japanese diagnostics of a FHIR OperationOutcome (empty if the body is not one)."""
    try:
        data = response.json()
    except ValueError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("issue"), list):
        return []
    out: list[str] = []
    for issue in data["issue"]:
        if isinstance(issue, dict):
            details = issue.get("details")
            text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict) else None)
            if isinstance(text, str) and text:
                out.append(text)
    return out


__all__ = ["HersysClient", "Receipt", "Holding", "HeldRevision", "HersysError", "RetryableError", "PermanentError",
           "RevisionConflict", "IdempotencyKeyReused", "backoff_delay", "serialize_bundle"]
