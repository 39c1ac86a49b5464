"""The sandbox as a process: data survives a restart, SIGTERM stops it cleanly, tokens expire on time."""

from __future__ import annotations

import time
import uuid

from hersys_client.sandbox.testing import running_sandbox

from .factories import key, make_bundle


def test_restart_keeps_notifications_and_idempotency_keys(tmp_path) -> None:
    with running_sandbox(tmp_path) as sb, sb.client_factory() as client:
        nid = str(uuid.uuid4())
        first = client.submit(make_bundle(nid), f"{nid}:1")
        port = sb.port

        assert sb.stop() == 0  # SIGTERM: clean exit
        assert "HER-SYS sandbox stopped" in sb.log_path.read_text("utf-8")
        sb.start()
        assert sb.port == port

        # The restart revoked the client's token: it refreshes once on 401 and carries on.
        assert client.status(first.receipt_id).receipt_id == first.receipt_id
        replay = client.submit(make_bundle(nid), f"{nid}:1")
        assert (replay.receipt_id, replay.http_status) == (first.receipt_id, 200)
        amended = client.submit(make_bundle(nid, 2, "amended"), f"{nid}:2")
        assert amended.receipt_id == first.receipt_id and amended.report_date == first.report_date

        received = sb.received()
        assert received["count"] == 1
        assert [r["revision"] for r in received["notifications"][0]["revisions"]] == [1, 2]


def test_expired_token_is_renewed_before_use(tmp_path) -> None:
    with running_sandbox(tmp_path, extra_args=["--token-ttl", "1"]) as sb, sb.client_factory() as client:
        bundle = make_bundle()
        client.submit(bundle, key(bundle))
        time.sleep(1.1)
        client.submit(bundle, key(bundle))
        log = sb.log_path.read_text("utf-8")
        assert log.count('"POST /oauth2/token') == 2
        assert '" 401' not in log  # renewed proactively, not after a refusal
