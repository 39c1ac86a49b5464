"""The sandbox under hostile input: every bad request gets a 4xx, none takes the server down."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hersys_client.sandbox.server import Config, Sandbox
from hersys_client.sandbox.testing import SandboxHandle
from hersys_client.sandbox.validation import validate_bundle

from .factories import make_bundle

pytestmark = pytest.mark.security


@pytest.fixture
def raw(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """An httpx client with the client certificate and a valid bearer token, for hand-made requests."""
    with sandbox.control_client() as c:
        token = c.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(sandbox.client_id, sandbox.client_secret)).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def post_bundle(raw: httpx.Client, content: bytes, idem: str = "k:1", **headers: str) -> httpx.Response:
    return raw.post("/fhir/Bundle", content=content,
                    headers={"Idempotency-Key": idem, "Content-Type": "application/fhir+json", **headers})


def assert_alive(sandbox: SandboxHandle) -> None:
    with sandbox.control_client() as c:
        assert c.get("/_sandbox/health").json() == {"status": "ok"}


def tls_socket(sandbox: SandboxHandle) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(sandbox.pki.ca_cert))
    ctx.load_cert_chain(str(sandbox.pki.client_cert), str(sandbox.pki.client_key))
    sock = socket.create_connection(("127.0.0.1", sandbox.port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def raw_exchange(sandbox: SandboxHandle, head: bytes) -> bytes:
    with tls_socket(sandbox) as s:
        s.sendall(head)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 200:
                break
        return b"".join(chunks)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe\x00garbage", b"[" * 200_000 + b"]" * 200_000, b'{"a": ' + b"9" * 5000 + b"}", b""],
    ids=["broken-json", "not-utf8", "deep-nesting", "huge-number", "empty"],
)
def test_malformed_body_is_400(sandbox: SandboxHandle, raw: httpx.Client, content: bytes) -> None:
    r = post_bundle(raw, content)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
    assert_alive(sandbox)


@pytest.mark.parametrize("doc", [[], None, 123, "Bundle", {"resourceType": "Patient"},
                                 {"resourceType": "Bundle", "type": "document", "entry": "x", "identifier": 5,
                                  "meta": []},
                                 {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": []}]},
                                 {"resourceType": "Bundle", "type": "document", "meta": {"versionId": "²"}}])
def test_wrong_shapes_are_422_not_500(sandbox: SandboxHandle, raw: httpx.Client, doc: Any) -> None:
    r = post_bundle(raw, json.dumps(doc).encode())
    assert r.status_code == 422
    assert all(i["diagnostics"] for i in r.json()["issue"])
    assert sandbox.received()["count"] == 0


def test_huge_body_is_413(sandbox: SandboxHandle, raw: httpx.Client) -> None:
    r = post_bundle(raw, b"{" + b" " * (6 * 1024 * 1024) + b"}")
    assert r.status_code == 413
    assert "大きすぎ" in r.json()["issue"][0]["diagnostics"]
    assert_alive(sandbox)


def test_absurd_content_length_is_refused_without_reading(sandbox: SandboxHandle) -> None:
    answer = raw_exchange(sandbox, b"POST /fhir/Bundle HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")
    assert_alive(sandbox)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e9", b"\xb2"])
def test_bad_content_length_is_400(sandbox: SandboxHandle, length: bytes) -> None:
    answer = raw_exchange(sandbox, b"POST /fhir/Bundle HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


def test_chunked_body_is_refused(sandbox: SandboxHandle) -> None:
    answer = raw_exchange(sandbox, b"POST /fhir/Bundle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"2\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411")


def test_missing_idempotency_key_is_400(raw: httpx.Client) -> None:
    r = raw.post("/fhir/Bundle", content=json.dumps(make_bundle()).encode())
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["issue"][0]["diagnostics"]


def test_without_token_is_401(sandbox: SandboxHandle) -> None:
    with sandbox.control_client() as c:
        r = c.post("/fhir/Bundle", content=b"{}", headers={"Idempotency-Key": "k", "Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert c.post("/oauth2/token", data={"grant_type": "client_credentials"}).status_code == 401
        bad_basic = c.post("/oauth2/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": "Basic !!!not-base64"})
        assert bad_basic.status_code == 401
        wrong_grant = c.post("/oauth2/token", data={"grant_type": "password"},
                             auth=(sandbox.client_id, sandbox.client_secret))
        assert wrong_grant.status_code == 400


def test_hostile_strings_are_stored_verbatim(sandbox: SandboxHandle, raw: httpx.Client) -> None:
    nid = "'); DROP TABLE notification; -- <script>alert(1)</script> 𠮷"
    bundle = make_bundle(nid)
    r = post_bundle(raw, json.dumps(bundle, ensure_ascii=False).encode(), idem="hostile:1")
    assert r.status_code == 201
    [stored] = sandbox.received()["notifications"]
    assert stored["bundle_identifier"] == nid


def test_unknown_paths_and_methods(raw: httpx.Client) -> None:
    assert raw.get("/fhir/Patient").status_code == 404
    assert raw.delete("/fhir/Bundle").status_code == 405
    assert raw.get("/fhir/Bundle/" + "9" * 5000).status_code == 404
    assert raw.post("/_sandbox/faults", json={"fail_next": -1}).status_code == 400
    assert raw.post("/_sandbox/faults", json={"no_such_switch": 1}).status_code == 400
    assert raw.post("/_sandbox/faults", content=b"[").status_code == 400


def test_plain_http_and_silent_clients_do_not_block_the_server(sandbox: SandboxHandle) -> None:
    silent = socket.create_connection(("127.0.0.1", sandbox.port))  # connects, never speaks TLS
    try:
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                plain.recv(100)
            except OSError:
                pass
        assert_alive(sandbox)
    finally:
        silent.close()


def test_control_endpoints_only_from_loopback_or_allowed_networks(tmp_path) -> None:
    import ipaddress

    from hersys_client.sandbox.store import SandboxStore

    store = SandboxStore(tmp_path / "db.sqlite3")
    try:
        app = Sandbox(Config(control_networks=(ipaddress.ip_network("172.18.0.0/16"),)), store)
        assert app.control_allowed("127.0.0.1") and app.control_allowed("::1")
        assert app.control_allowed("::ffff:127.0.0.1")
        assert app.control_allowed("172.18.0.5")
        assert not app.control_allowed("10.0.0.1") and not app.control_allowed("garbage")
    finally:
        store.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceType", "type", "entry", "resource", "identifier", "value", "meta", "versionId",
                         "item", "answer", "definition", "questionnaire", "status", "valueString", "x"]),
        children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_validator_never_raises_on_arbitrary_json(doc: Any) -> None:
    submission, issues = validate_bundle(doc, ["2022-09"])
    assert (submission is None) == bool(issues)


@settings(max_examples=100)
@given(st.data())
def test_validator_never_raises_on_mutated_bundles(data: st.DataObject) -> None:
    bundle = make_bundle()
    path: list[Any] = []
    node: Any = bundle
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        k = data.draw(st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1))
        path.append(k)
        node = node[k]
    target: Any = bundle
    for k in path[:-1]:
        target = target[k]
    if path:
        target[path[-1]] = data.draw(json_values)
    validate_bundle(bundle, ["2022-09"])
