"""Idempotency bound to content and asking HER-SYS what it holds (issue 12), against the real sandbox.

Like Stripe's idempotency keys: a key may only ever be repeated with the body it was first used with; anything else is
a 409 that says so (never a silent replay of the first answer, which would leave HER-SYS with the old values while the
sender believes the new ones were accepted). And a sender can ask by the notification's stable `Bundle.identifier`
which revisions HER-SYS holds, under which key and with which content hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hersys_client import HersysClient, IdempotencyKeyReused, PermanentError, RetryableError, RevisionConflict
from hersys_client.client import serialize_bundle
from hersys_client.sandbox.store import content_sha256
from hersys_client.sandbox.testing import SandboxHandle

from .factories import ITEMS, make_bundle


def content_key(bundle: dict) -> str:
    """The product's key: <uuid>:<revision>:<sha256[:16]> of the canonical bytes."""
    return f"{bundle['identifier']['value']}:{bundle['meta']['versionId']}:{content_sha256(bundle)[:16]}"


def test_reused_key_with_a_different_body_is_a_409_and_stores_nothing(sandbox: SandboxHandle,
                                                                       client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    first = make_bundle(nid, 1)
    receipt = client.submit(first, "old-style-key:1")
    changed = make_bundle(nid, 1, items={**ITEMS, "patient.address": "東京都千代田区霞が関１－２－２"})
    with pytest.raises(IdempotencyKeyReused) as exc:
        client.submit(changed, "old-style-key:1")  # same key, same identifier and revision, other content
    assert exc.value.status == 409
    assert "別の内容" in exc.value.message_ja and "以前の内容" in exc.value.message_ja
    [stored] = sandbox.received()["notifications"]
    assert stored["revisions"][0]["bundle"] == first  # HER-SYS kept the first body
    # The very same body (any whitespace) is still an exact replay with the original receipt.
    pretty = json.dumps(first, ensure_ascii=False, indent=2).encode()
    assert client.submit_bytes(pretty, "old-style-key:1").receipt_id == receipt.receipt_id


def test_reused_key_answer_is_machine_readable(sandbox: SandboxHandle, client: HersysClient) -> None:
    client.submit(make_bundle("x"), "k1")
    with sandbox.client_factory() as c:
        token = c._access_token()
    with sandbox.control_client() as raw:
        r = raw.post("/fhir/Bundle", content=serialize_bundle(make_bundle("x", 1, items={**ITEMS, "patient.phone":
                                                                                              "090-0000-0000"})),
                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1",
                              "Content-Type": "application/fhir+json"})
    assert r.status_code == 409
    issue = r.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert issue["details"]["coding"][0]["code"] == "idempotency-key-reused"


def test_same_revision_under_another_key_is_a_revision_conflict(sandbox: SandboxHandle,
                                                                 client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    first = make_bundle(nid, 1)
    client.submit(first, content_key(first))
    changed = make_bundle(nid, 1, items={**ITEMS, "patient.phone": "090-1111-2222"})
    with pytest.raises(RevisionConflict) as exc:
        client.submit(changed, content_key(changed))
    assert exc.value.status == 409 and "版" in exc.value.message_ja


def test_lookup_by_bundle_identifier_tells_which_content_is_held(sandbox: SandboxHandle,
                                                                 client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    assert client.lookup(nid) is None
    first = make_bundle(nid, 1)
    receipt = client.submit(first, content_key(first))
    second = make_bundle(nid, 2, "amended", items={**ITEMS, "patient.phone": "090-1111-2222"})
    client.submit(second, content_key(second))
    holding = client.lookup(nid)
    assert holding is not None
    assert (holding.receipt_id, holding.revision, holding.status) == (receipt.receipt_id, 2, "accepted")
    assert holding.organization == "H0001"
    assert [r.revision for r in holding.revisions] == [1, 2]
    held = holding.held(1)
    assert held.idempotency_key == content_key(first)
    assert held.sha256 == content_sha256(first)
    assert held.sha256 == hashlib.sha256(serialize_bundle(first)).hexdigest()  # the sender's payload hash
    assert holding.held(3) is None
    assert holding.receipt(1).revision == 1 and holding.receipt(1).receipt_id == receipt.receipt_id
    # The stored document of a revision can be read back.
    assert client.document(receipt.receipt_id, 2) == second
    with pytest.raises(PermanentError):
        client.document(receipt.receipt_id, 3)


def test_search_by_facility_since_a_moment(sandbox: SandboxHandle, client: HersysClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    a, b = make_bundle(), make_bundle()
    client.submit(a, content_key(a))
    client.submit(b, content_key(b))
    found = client.search("H0001", before)
    assert {h.bundle_identifier for h in found} == {a["identifier"]["value"], b["identifier"]["value"]}
    assert client.search("H9999", before) == []
    assert client.search("H0001", datetime.now(UTC) + timedelta(minutes=1)) == []


def test_search_needs_a_criterion_and_valid_since(sandbox: SandboxHandle) -> None:
    with sandbox.client_factory() as c:
        token = c._access_token()
    with sandbox.control_client() as raw:
        auth = {"Authorization": f"Bearer {token}"}
        assert raw.get("/fhir/Bundle", headers=auth).status_code == 400
        assert raw.get("/fhir/Bundle", params={"organization": "H0001", "since": "gestern"},
                       headers=auth).status_code == 400
        assert raw.get("/fhir/Bundle", params={"identifier": "x"}).status_code == 401
        r = raw.get("/fhir/Bundle", params={"identifier": "nothing-here"}, headers=auth)
        assert r.status_code == 200 and r.json() == {"total": 0, "notifications": []}


def test_lookup_honours_faults(sandbox: SandboxHandle, client: HersysClient) -> None:
    sandbox.set_faults(fail_next=1)
    with pytest.raises(RetryableError):
        client.lookup("any")
    assert client.lookup("any") is None


def test_old_database_gets_the_new_columns(tmp_path) -> None:
    import sqlite3

    from hersys_client.sandbox.store import SandboxStore

    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE notification (bundle_identifier TEXT PRIMARY KEY, receipt_id TEXT NOT NULL UNIQUE,
            report_date TEXT NOT NULL, status TEXT NOT NULL, revision INTEGER NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE idempotency (key TEXT PRIMARY KEY, bundle_identifier TEXT NOT NULL, revision INTEGER NOT NULL,
            http_status INTEGER NOT NULL, answer TEXT NOT NULL);
        INSERT INTO idempotency VALUES ('k', 'n1', 1, 201, '{}');
    """)
    con.commit()
    con.close()
    store = SandboxStore(db)
    # A key stored before hashes were kept still refuses another notification or revision, replays the same one.
    from hersys_client.sandbox.store import KeyReused
    with pytest.raises(KeyReused):
        store.replay("k", make_bundle("n2", 1))
    assert store.replay("k", make_bundle("n1", 1)) is not None
    store.close()
