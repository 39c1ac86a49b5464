"""HersysClient against the real sandbox over mutual TLS: token flow, receipts, idempotency, errors, faults."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import uuid
from datetime import date

import httpx
import pytest

from hersys_client import HersysClient, HersysError, IdempotencyKeyReused, PermanentError, RetryableError
from hersys_client.devpki import ensure_dev_pki
from hersys_client.sandbox.testing import SandboxHandle

from .factories import ITEMS, key, make_bundle

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def log_count(sb: SandboxHandle, needle: str) -> int:
    return sb.log_path.read_text("utf-8", "replace").count(needle)


# -- token flow --------------------------------------------------------------------------------------------------------
def test_token_is_fetched_once_and_reused(sandbox: SandboxHandle, client: HersysClient) -> None:
    before = log_count(sandbox, '"POST /oauth2/token')
    receipt = client.submit(make_bundle(), str(uuid.uuid4()) + ":1")
    client.status(receipt.receipt_id)
    client.submit(make_bundle(), str(uuid.uuid4()) + ":1")
    assert log_count(sandbox, '"POST /oauth2/token') == before + 1


def test_revoked_token_is_refreshed_once_on_401(sandbox: SandboxHandle, client: HersysClient) -> None:
    first = client.submit(make_bundle(), str(uuid.uuid4()) + ":1")
    tokens = log_count(sandbox, '"POST /oauth2/token')
    sandbox.set_faults(expire_tokens=True)
    assert client.status(first.receipt_id).receipt_id == first.receipt_id
    assert log_count(sandbox, '"POST /oauth2/token') == tokens + 1
    assert log_count(sandbox, '"GET /fhir/Bundle/' + first.receipt_id + ' HTTP/1.1" 401') == 1


def test_wrong_client_secret_is_a_permanent_error_in_japanese(sandbox: SandboxHandle) -> None:
    with sandbox.client_factory(client_secret="wrong") as bad, pytest.raises(PermanentError) as exc:
        bad.submit(make_bundle(), "k:1")
    assert exc.value.status == 401
    assert JAPANESE.search(exc.value.message_ja)
    assert sandbox.received()["count"] == 0


# -- mutual TLS ----------------------------------------------------------------------------------------------------------
def test_connection_without_client_certificate_is_refused(sandbox: SandboxHandle) -> None:
    with sandbox.client_factory(cert=None) as anonymous, pytest.raises(RetryableError):
        anonymous.submit(make_bundle(), "k:1")
    trust_only = ssl.create_default_context(cafile=str(sandbox.pki.ca_cert))
    with httpx.Client(verify=trust_only) as raw, pytest.raises(httpx.TransportError):
        raw.get(f"{sandbox.url}/_sandbox/health")
    assert sandbox.received()["count"] == 0


def test_client_certificate_from_another_ca_is_refused(sandbox: SandboxHandle, tmp_path) -> None:
    stranger = ensure_dev_pki(tmp_path / "other-pki")
    with sandbox.client_factory(cert=stranger.client_pair) as c, pytest.raises(HersysError):
        c.submit(make_bundle(), "k:1")
    assert sandbox.received()["count"] == 0


def test_server_not_signed_by_our_ca_is_not_trusted(sandbox: SandboxHandle, tmp_path) -> None:
    other_ca = ensure_dev_pki(tmp_path / "other-pki").ca_cert
    with sandbox.client_factory(ca_path=other_ca) as c, pytest.raises(RetryableError):
        c.submit(make_bundle(), "k:1")


# -- receipts and idempotency ----------------------------------------------------------------------------------------
def test_submit_new_notification_returns_201_receipt(sandbox: SandboxHandle, client: HersysClient) -> None:
    bundle = make_bundle()
    receipt = client.submit(bundle, key(bundle))
    assert receipt.created and receipt.http_status == 201
    assert re.fullmatch(r"HS-\d{10}", receipt.receipt_id)
    assert receipt.report_date == date.today()
    assert (receipt.status, receipt.revision) == ("accepted", 1)
    assert receipt.bundle_identifier == bundle["identifier"]["value"]
    [stored] = sandbox.received()["notifications"]
    assert stored["receipt_id"] == receipt.receipt_id
    assert stored["revisions"][0]["bundle"] == bundle


def test_submit_bytes_sends_the_given_bytes_unchanged_on_every_try(sandbox: SandboxHandle,
                                                                 client: HersysClient) -> None:
    from hersys_client.client import serialize_bundle

    bundle = make_bundle()
    body = b"  " + json.dumps(bundle, ensure_ascii=False, indent=3).encode("utf-8") + b"\n"  # not canonical
    sandbox.set_faults(fail_next=1)
    with pytest.raises(RetryableError):
        client.submit_bytes(body, key(bundle))
    receipt = client.submit_bytes(body, key(bundle))
    assert receipt.created
    tries = sandbox.requests(idempotency_key=key(bundle))
    assert [t["body"] for t in tries] == [body, body]
    assert {t["sha256"] for t in tries} == {hashlib.sha256(body).hexdigest()}
    assert sandbox.received()["notifications"][0]["revisions"][0]["bundle"] == bundle
    # submit() is submit_bytes() of the canonical serialisation (sorted keys, no whitespace): stable bytes.
    client.submit(bundle, key(bundle))
    assert sandbox.requests(idempotency_key=key(bundle))[-1]["body"] == serialize_bundle(bundle)
    assert serialize_bundle(bundle) == serialize_bundle(json.loads(body))
    with pytest.raises(ValueError):
        client.submit_bytes(bundle, key(bundle))  # type: ignore[arg-type] - a dict is not bytes
    sandbox.reset()
    assert sandbox.requests() == []


def test_replay_of_same_key_returns_same_receipt_and_stores_nothing(sandbox: SandboxHandle,
                                                                    client: HersysClient) -> None:
    bundle = make_bundle()
    first = client.submit(bundle, key(bundle))
    again = client.submit(bundle, key(bundle))
    assert again.receipt_id == first.receipt_id
    assert again.http_status == 200 and not again.created
    received = sandbox.received()
    assert received["count"] == 1 and received["idempotency_keys"] == 1
    assert len(received["notifications"][0]["revisions"]) == 1


def test_replay_answers_as_before_even_after_the_accepted_versions_changed(sandbox: SandboxHandle,
                                                                          client: HersysClient) -> None:
    bundle = make_bundle(items={k: v for k, v in ITEMS.items() if k != "report.notification_target"},
                         version="2021-03")
    first = client.submit(bundle, key(bundle))
    sandbox.set_faults(accepted_versions=["2022-09"])
    assert client.submit(bundle, key(bundle)).receipt_id == first.receipt_id


def test_same_key_for_another_notification_is_rejected(sandbox: SandboxHandle, client: HersysClient) -> None:
    client.submit(make_bundle("a"), "shared-key")
    with pytest.raises(IdempotencyKeyReused) as exc:
        client.submit(make_bundle("b"), "shared-key")
    assert exc.value.status == 409 and "別の内容" in exc.value.message_ja
    assert sandbox.received()["count"] == 1


def test_amended_revision_updates_the_same_receipt(sandbox: SandboxHandle, client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    first = client.submit(make_bundle(nid, 1), f"{nid}:1")
    amended_items = {**ITEMS, "report.diagnosis_class": "asymptomatic_carrier"}
    second = client.submit(make_bundle(nid, 2, "amended", amended_items), f"{nid}:2")
    assert second.receipt_id == first.receipt_id
    assert second.http_status == 200
    assert (second.revision, second.status, second.report_date) == (2, "accepted", first.report_date)
    [stored] = sandbox.received()["notifications"]
    assert [r["questionnaire_status"] for r in stored["revisions"]] == ["completed", "amended"]
    assert client.status(first.receipt_id).revision == 2


def test_stopped_withdraws_the_notification(sandbox: SandboxHandle, client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    first = client.submit(make_bundle(nid, 1), f"{nid}:1")
    withdrawn = client.submit(make_bundle(nid, 2, "stopped"), f"{nid}:2")
    assert (withdrawn.receipt_id, withdrawn.status) == (first.receipt_id, "withdrawn")
    assert client.status(first.receipt_id).status == "withdrawn"


def test_withdrawal_of_unknown_notification_is_rejected(client: HersysClient) -> None:
    with pytest.raises(PermanentError) as exc:
        client.submit(make_bundle("never-sent", 1, "stopped"), "never-sent:1")
    assert exc.value.status == 422 and JAPANESE.search(exc.value.issues[0])


def test_older_revision_is_a_409_conflict(sandbox: SandboxHandle, client: HersysClient) -> None:
    nid = str(uuid.uuid4())
    client.submit(make_bundle(nid, 1), f"{nid}:1")
    client.submit(make_bundle(nid, 3, "amended"), f"{nid}:3")
    with pytest.raises(PermanentError) as exc:
        client.submit(make_bundle(nid, 2, "amended"), f"{nid}:2")
    assert exc.value.status == 409
    assert "版" in exc.value.message_ja and exc.value.issues
    assert sandbox.received()["notifications"][0]["revision"] == 3


# -- validation (422) --------------------------------------------------------------------------------------------------
def test_missing_required_item_is_422_with_japanese_diagnostics(sandbox: SandboxHandle,
                                                               client: HersysClient) -> None:
    items = {k: v for k, v in ITEMS.items() if k not in ("patient.sex", "report.notification_target")}
    bundle = make_bundle(items=items)
    with pytest.raises(PermanentError) as exc:
        client.submit(bundle, key(bundle))
    assert exc.value.status == 422
    assert any("性別" in i and "patient.sex" in i for i in exc.value.issues)
    assert any("届出対象区分" in i for i in exc.value.issues)
    assert len(exc.value.issues) == 2
    assert sandbox.received()["count"] == 0


def test_notification_target_is_required_only_from_2022_09(client: HersysClient) -> None:
    items = {k: v for k, v in ITEMS.items() if k != "report.notification_target"}
    bundle = make_bundle(items=items, version="2021-03")
    assert client.submit(bundle, key(bundle)).created


def test_unknown_item_set_version_is_422(sandbox: SandboxHandle, client: HersysClient) -> None:
    bundle = make_bundle(version="2099-01")
    with pytest.raises(PermanentError) as exc:
        client.submit(bundle, key(bundle))
    assert exc.value.status == 422
    assert "2099-01" in exc.value.issues[0] and "受け付けていません" in exc.value.issues[0]


def test_accepted_versions_switch_retires_an_item_set(sandbox: SandboxHandle, client: HersysClient) -> None:
    sandbox.set_faults(accepted_versions=["2022-09"])
    old = make_bundle(version="2021-03")
    with pytest.raises(PermanentError, match="2021-03"):
        client.submit(old, key(old))
    new = make_bundle(version="2022-09")
    assert client.submit(new, key(new)).created


# -- retryable faults --------------------------------------------------------------------------------------------------
def test_429_carries_retry_after(sandbox: SandboxHandle, client: HersysClient) -> None:
    sandbox.set_faults(rate_limit_next=1, retry_after=7)
    bundle = make_bundle()
    with pytest.raises(RetryableError) as exc:
        client.submit(bundle, key(bundle))
    assert (exc.value.status, exc.value.retry_after) == (429, 7.0)
    assert JAPANESE.search(exc.value.message_ja)
    assert client.submit(bundle, key(bundle)).created  # the switch fired once


def test_503_is_retryable_and_the_retry_stores_once(sandbox: SandboxHandle, client: HersysClient) -> None:
    sandbox.set_faults(fail_next=2)
    bundle = make_bundle()
    for _ in range(2):
        with pytest.raises(RetryableError) as exc:
            client.submit(bundle, key(bundle))
        assert exc.value.status == 503
    assert client.submit(bundle, key(bundle)).created
    assert sandbox.received()["count"] == 1


def test_timeout_is_retryable(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(timeout_next=1)
    bundle = make_bundle()
    with sandbox.client_factory(timeout=0.5) as c:
        with pytest.raises(RetryableError) as exc:
            c.submit(bundle, key(bundle))
        assert exc.value.status is None and "タイムアウト" in exc.value.message_ja
        assert c.submit(bundle, key(bundle)).created
    assert sandbox.received()["count"] == 1


def test_latency_longer_than_the_client_timeout_is_retryable(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(latency_ms=800)
    with sandbox.client_factory(timeout=0.3) as c, pytest.raises(RetryableError):
        c.submit(make_bundle(), "k:1")


def test_unreachable_server_is_retryable(sandbox: SandboxHandle) -> None:
    with sandbox.client_factory(base_url="https://127.0.0.1:9", timeout=1) as c, pytest.raises(RetryableError):
        c.submit(make_bundle(), "k:1")


# -- status --------------------------------------------------------------------------------------------------------------
def test_status_of_unknown_receipt_is_404(client: HersysClient) -> None:
    with pytest.raises(PermanentError) as exc:
        client.status("HS-0000000000")
    assert exc.value.status == 404


def test_client_refuses_malformed_ids_before_sending(client: HersysClient) -> None:
    with pytest.raises(ValueError):
        client.status("../_sandbox/reset")
    with pytest.raises(ValueError):
        client.submit(make_bundle(), "bad key with spaces")
