"""SQLite storage of the sandbox: notifications with every revision, and idempotency keys with their answers.

One connection guarded by a lock: the server is threaded, and the "look up key → check revision → store" sequence
must be atomic anyway. WAL keeps readers cheap; each accepted request is one committed transaction, so a killed
sandbox loses nothing it has answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .validation import bundle_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notification (
    bundle_identifier TEXT PRIMARY KEY,
    receipt_id        TEXT NOT NULL UNIQUE,
    report_date       TEXT NOT NULL,
    status            TEXT NOT NULL,
    revision          INTEGER NOT NULL,
    updated_at        TEXT NOT NULL,
    organization      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS revision (
    bundle_identifier    TEXT NOT NULL REFERENCES notification(bundle_identifier),
    revision             INTEGER NOT NULL,
    questionnaire_status TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    received_at          TEXT NOT NULL,
    bundle               TEXT NOT NULL,
    PRIMARY KEY (bundle_identifier, revision)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key               TEXT PRIMARY KEY,
    bundle_identifier TEXT NOT NULL,
    revision          INTEGER NOT NULL,
    http_status       INTEGER NOT NULL,
    answer            TEXT NOT NULL,
    sha256            TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS request (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    body            BLOB NOT NULL
);
"""
# Columns added after the first release: a database made by an older sandbox gets them on open.
_ADDED_COLUMNS = (("notification", "organization", "TEXT NOT NULL DEFAULT ''"),
                  ("idempotency", "sha256", "TEXT NOT NULL DEFAULT ''"))


KEY_REUSED_JA = ("この Idempotency-Key は別の内容の送信で使用済みです。同じキーで送れるのは最初と同じ内容だけです"
                 "（HER-SYS は最初の内容を保持しています）。")


def content_sha256(bundle: Any) -> str:
    """The hash of a Bundle's canonical JSON (sorted keys, no whitespace, UTF-8): what a sender that freezes its
    bytes canonically (hersys_client.serialize_bundle) hashes too, whatever the whitespace of the request."""
    return hashlib.sha256(json.dumps(bundle, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def organization_code(bundle: Any) -> str:
    """The reporting facility's code (Organization.identifier[0].value), read leniently; '' if absent."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Organization":
            idents = resource.get("identifier")
            first = idents[0] if isinstance(idents, list) and idents and isinstance(idents[0], dict) else {}
            value = first.get("value")
            return value[:100] if isinstance(value, str) else ""
    return ""


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: dict[str, Any]
    replayed: bool = False


class Conflict(Exception):
    """A revision not newer than the one already accepted (→ 409)."""

    def __init__(self, message_ja: str) -> None:
        super().__init__(message_ja)
        self.message_ja = message_ja


class KeyReused(Exception):
    """An idempotency key already used for a different body (→ 409, like Stripe's idempotency error)."""


class Rejected(Exception):
    """A request the store cannot apply (→ 422), e.g. withdrawing an unknown notification."""

    def __init__(self, message_ja: str) -> None:
        super().__init__(message_ja)
        self.message_ja = message_ja


class SandboxStore:
    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for table, column, decl in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def replay(self, key: str, bundle: Any) -> Answer | None:
        """The original answer stored for an idempotency key, if any. Raises KeyReused when `bundle` is not the
        body first sent under it (keys stored before hashes were kept: not the same identifier and revision)."""
        with self._lock:
            row = self._db.execute(
                "SELECT bundle_identifier, revision, http_status, answer, sha256 FROM idempotency WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        _check_same_body(row[0], row[1], row[4], bundle)
        return Answer(200, json.loads(row[3]), replayed=True)

    def accept(
        self, *, key: str, identifier: str, revision: int, qr_status: str, bundle: dict[str, Any], today: date
    ) -> Answer:
        """Store one revision atomically and return the answer (201 new / 200 update or replay).

        Raises Conflict if `revision` is not newer than the stored one, Rejected for a withdrawal of a
        notification never received.
        """
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                answer = self._accept_locked(key, identifier, revision, qr_status, bundle, today, now)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return answer

    def _accept_locked(
        self, key: str, identifier: str, revision: int, qr_status: str, bundle: dict[str, Any], today: date,
        now: str,
    ) -> Answer:
        db = self._db
        row = db.execute(  # a concurrent request with the same key may have won the race
            "SELECT bundle_identifier, revision, answer, sha256 FROM idempotency WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            _check_same_body(row[0], row[1], row[3], bundle)
            return Answer(200, json.loads(row[2]), replayed=True)
        status = "withdrawn" if qr_status == "stopped" else "accepted"
        current = db.execute(
            "SELECT receipt_id, report_date, revision FROM notification WHERE bundle_identifier = ?", (identifier,)
        ).fetchone()
        if current is None:
            if qr_status == "stopped":
                raise Rejected("取り下げ対象の届出が HER-SYS に登録されていません。")
            receipt_id = self._new_receipt_id()
            report_date = today.isoformat()
            db.execute(
                "INSERT INTO notification VALUES (?, ?, ?, ?, ?, ?, ?)",
                (identifier, receipt_id, report_date, status, revision, now, organization_code(bundle)),
            )
            http_status = 201
        else:
            receipt_id, report_date, stored_revision = current
            if revision <= stored_revision:
                raise Conflict(
                    f"この届出は版 {stored_revision} まで受理済みです。版 {revision} は受け付けられません。"
                )
            db.execute(
                "UPDATE notification SET status = ?, revision = ?, updated_at = ? WHERE bundle_identifier = ?",
                (status, revision, now, identifier),
            )
            http_status = 200
        db.execute(
            "INSERT INTO revision VALUES (?, ?, ?, ?, ?, ?)",
            (identifier, revision, qr_status, key, now, json.dumps(bundle, ensure_ascii=False)),
        )
        body = {
            "receipt_id": receipt_id,
            "report_date": report_date,
            "status": status,
            "revision": revision,
            "bundle_identifier": identifier,
        }
        db.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
            (key, identifier, revision, http_status, json.dumps(body, ensure_ascii=False), content_sha256(bundle)),
        )
        return Answer(http_status, body)

    def _new_receipt_id(self) -> str:
        while True:  # random, not sequential: receipt ids should not be guessable
            candidate = f"HS-{secrets.randbelow(10**10):010d}"
            if self._db.execute("SELECT 1 FROM notification WHERE receipt_id = ?", (candidate,)).fetchone() is None:
                return candidate

    def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT receipt_id, report_date, status, revision, bundle_identifier FROM notification "
                "WHERE receipt_id = ?",
                (receipt_id,),
            ).fetchone()
        if row is None:
            return None
        keys = ("receipt_id", "report_date", "status", "revision", "bundle_identifier")
        return dict(zip(keys, row, strict=True))

    def holdings(self, *, identifier: str | None = None, organization: str | None = None,
                 since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """What HER-SYS holds (GET /fhir/Bundle?identifier=… or ?organization=…&since=…): per notification its
        receipt and current revision, and per stored revision its idempotency key and the sha256 of its canonical
        body, so a sender can tell its own revision from another one with the same number."""
        where, args = [], []
        if identifier is not None:
            where.append("n.bundle_identifier = ?")
            args.append(identifier)
        if organization is not None:
            where.append("n.organization = ?")
            args.append(organization)
        if since is not None:
            where.append("n.updated_at >= ?")
            args.append(since)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            notes = self._db.execute(
                "SELECT n.bundle_identifier, n.receipt_id, n.report_date, n.status, n.revision, n.organization, "
                f"n.updated_at FROM notification n {clause} ORDER BY n.updated_at, n.rowid LIMIT ?",
                (*args, limit),
            ).fetchall()
            out = []
            for ident, receipt_id, report_date, status, revision, organization_, updated_at in notes:
                revs = self._db.execute(
                    "SELECT r.revision, r.questionnaire_status, r.idempotency_key, r.received_at, "
                    "COALESCE(i.sha256, '') FROM revision r LEFT JOIN idempotency i ON i.key = r.idempotency_key "
                    "WHERE r.bundle_identifier = ? ORDER BY r.revision",
                    (ident,),
                ).fetchall()
                out.append({
                    "bundle_identifier": ident, "receipt_id": receipt_id, "report_date": report_date,
                    "status": status, "revision": revision, "organization": organization_, "updated_at": updated_at,
                    "revisions": [{"revision": r, "questionnaire_status": q, "idempotency_key": k,
                                   "received_at": at, "sha256": sha} for r, q, k, at, sha in revs],
                })
        return out

    def document(self, receipt_id: str, revision: int) -> dict[str, Any] | None:
        """The Bundle stored for one revision of a notification (GET /fhir/Bundle/<receipt>/_history/<n>)."""
        with self._lock:
            row = self._db.execute(
                "SELECT r.bundle FROM revision r JOIN notification n ON n.bundle_identifier = r.bundle_identifier "
                "WHERE n.receipt_id = ? AND r.revision = ?",
                (receipt_id, revision),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def received(self, *, include_bundles: bool = True, bundle_identifier: str | None = None) -> dict[str, Any]:
        """Everything stored, for tests and benchmarks (GET /_sandbox/received)."""
        where, args = ("WHERE bundle_identifier = ?", (bundle_identifier,)) if bundle_identifier else ("", ())
        with self._lock:
            notes = self._db.execute(
                "SELECT bundle_identifier, receipt_id, report_date, status, revision FROM notification "
                f"{where} ORDER BY rowid",
                args,
            ).fetchall()
            revs = self._db.execute(
                "SELECT bundle_identifier, revision, questionnaire_status, idempotency_key, received_at, "
                f"{'bundle' if include_bundles else 'NULL'} FROM revision {where} "
                "ORDER BY bundle_identifier, revision",
                args,
            ).fetchall()
            keys = self._db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
        by_id: dict[str, list[dict[str, Any]]] = {}
        for ident, rev, qr_status, key, received_at, bundle in revs:
            entry: dict[str, Any] = {
                "revision": rev,
                "questionnaire_status": qr_status,
                "idempotency_key": key,
                "received_at": received_at,
            }
            if include_bundles:
                entry["bundle"] = json.loads(bundle)
            by_id.setdefault(ident, []).append(entry)
        notifications = [
            {
                "bundle_identifier": ident,
                "receipt_id": receipt_id,
                "report_date": report_date,
                "status": status,
                "revision": revision,
                "revisions": by_id.get(ident, []),
            }
            for ident, receipt_id, report_date, status, revision in notes
        ]
        return {"count": len(notifications), "idempotency_keys": keys, "notifications": notifications}

    def record_request(self, key: str, body: bytes) -> None:
        """Keep the raw body of every POST /fhir/Bundle as it arrived (replays and failed tries too), so tests can
        compare the exact bytes of each attempt."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute(
                "INSERT INTO request (idempotency_key, sha256, received_at, body) VALUES (?, ?, ?, ?)",
                (key, hashlib.sha256(body).hexdigest(), now, body),
            )

    def requests(self, *, include_bodies: bool = True, idempotency_key: str | None = None) -> dict[str, Any]:
        """Every recorded request body in arrival order (GET /_sandbox/requests); bodies base64-encoded."""
        where, args = ("WHERE idempotency_key = ?", (idempotency_key,)) if idempotency_key is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, idempotency_key, sha256, received_at, length(body), "
                f"{'body' if include_bodies else 'NULL'} FROM request {where} ORDER BY seq",
                args,
            ).fetchall()
        out = []
        for seq, key, sha256, received_at, length, body in rows:
            entry: dict[str, Any] = {"seq": seq, "idempotency_key": key, "sha256": sha256,
                                     "received_at": received_at, "length": length}
            if include_bodies:
                entry["body_base64"] = base64.b64encode(body).decode("ascii")
            out.append(entry)
        return {"count": len(out), "requests": out}

    def reset(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for table in ("request", "idempotency", "revision", "notification"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._db.execute("COMMIT")


def _check_same_body(identifier: str, revision: int, sha256: str, bundle: Any) -> None:
    if sha256 and sha256 != content_sha256(bundle):
        raise KeyReused(KEY_REUSED_JA)
    if not sha256 and bundle_key(bundle) != (identifier, revision):
        raise KeyReused(KEY_REUSED_JA)
