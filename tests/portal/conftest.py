"""Fixtures for the Django project: tenants, users with TOTP, published definitions, the HER-SYS sandbox."""
from __future__ import annotations

import json
import time

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import DEMO_SAMPLES

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def hospital(db):
    from assist_portal.accounts.connector_keys import connector_key_register
    from assist_portal.accounts.models import Hospital

    codes = json.loads((DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8"))
    row = Hospital.objects.create(code="H0001", name="さくら総合病院", address="東京都千代田区霞が関１−２−２",
                                  phone="03-5253-1111", local_codes=codes)
    connector_key_register(row, name="テスト用", secret="key-h0001")
    return row


@pytest.fixture
def other_hospital(db):
    from assist_portal.accounts.connector_keys import connector_key_register
    from assist_portal.accounts.models import Hospital

    row = Hospital.objects.create(code="H0002", name="みなと市民病院", address="大阪府大阪市北区梅田１−１",
                                  phone="06-0000-0000")
    connector_key_register(row, name="テスト用", secret="key-h0002")
    return row


def current_totp(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def next_totp(device: TOTPDevice) -> str:
    """The code of the next 30-second step: accepted now (django-otp's tolerance is one step) although the current
    code was just used to sign in (a used code is refused) — a re-check right after sign-in without waiting."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0 - device.step, digits=device.digits):0{device.digits}d}"


@pytest.fixture
def make_user(db):
    from assist_portal.accounts.models import User

    def make(username: str, role: str, hospital=None, display_name: str = "") -> User:
        user = User.objects.create_user(username=username, password=PASSWORD, role=role, hospital=hospital,
                                        display_name=display_name or username)
        TOTPDevice.objects.create(user=user, name="default", confirmed=True)
        return user

    return make


@pytest.fixture
def physician(make_user, hospital):
    return make_user("dr_okada", "physician", hospital, "山田　一郎")


@pytest.fixture
def clerk(make_user, hospital):
    return make_user("clerk_sato", "clerk", hospital, "佐藤　花子")


@pytest.fixture
def central_admin(make_user):
    return make_user("central", "central_admin")


@pytest.fixture
def hospital_admin(make_user, hospital):
    return make_user("hadmin", "hospital_admin", hospital, "管理　花子")


def verified_login(client, user):
    """Sign a test client in as if password + TOTP had been checked (the real sign-in is tested apart)."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user).first()
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session["otp_verified_at"] = time.time()  # as a sign-in with password + TOTP just now would
    session.save()
    return client


@pytest.fixture
def login():
    return verified_login


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


@pytest.fixture
def published(db):
    """Publish a builtin catalog version for every hospital; returns a function."""
    from assist_portal.central.services import definition_publish
    from assist_portal.formdefs.services import definition_import_builtin

    def publish(version: str = "2021-03", hospitals=None):
        return definition_publish(definition_import_builtin(version), hospitals=hospitals)

    return publish


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    """A real HER-SYS sandbox subprocess over HTTPS with mutual TLS, shared by the session."""
    from hersys_client.sandbox.testing import running_sandbox

    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server, settings):
    """The sandbox, reset, with the Django settings pointing at it."""
    from assist_portal.delivery.services import hersys_client

    sandbox_server.reset()
    settings.HERSYS_API_URL = sandbox_server.url
    settings.HERSYS_PKI_DIR = sandbox_server.pki.dir
    settings.HERSYS_CLIENT_ID = sandbox_server.client_id
    settings.HERSYS_CLIENT_SECRET = sandbox_server.client_secret
    hersys_client.cache_clear()
    yield sandbox_server
    hersys_client.cache_clear()


def push_extract(client, patient_id: str, fmt: str = "fhir", key: str = "key-h0001", raw: bool = False):
    """What the hospital connector does: extract inside the hospital and push only the notification items (or,
    `raw=True`, the extract itself — accepted only where the hospital switched raw pushes on)."""
    from connector.extract import items_body, raw_body, read_source, run_mapping

    path = (DEMO_SAMPLES / "ss-mix2" / patient_id[:3] / patient_id[3:6] / patient_id if fmt == "ss-mix2"
            else DEMO_SAMPLES / "fhir" / f"{patient_id}.json")
    data = read_source(fmt, path)
    if raw:
        body = raw_body(patient_id, fmt, data)
    else:
        codes = json.loads((DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8"))
        body = items_body(patient_id, fmt, data, run_mapping(fmt, data, patient_id, codes, None))
    return client.post("/api/v1/extracts", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Api-Key {key}")


@pytest.fixture
def push():
    return push_extract


def launch_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def open_from_emr(client, user, patient_id: str, fmt: str = "ss-mix2"):
    """The EMR button: the connector pushes the patient's extract, `user` signs in and opens the launch URL
    (answered with the pre-filled form itself). Returns the patient's notification."""
    from assist_portal.notifications.models import Notification

    url = push_extract(client, patient_id, fmt).json()["launch_url"]
    verified_login(client, user)
    opened = launched_form(client, launch_path(url))
    notification = Notification.objects.get(patient_ref=patient_id)
    assert opened.context["notification"].pk == notification.pk
    return notification


def launched_form(client, path: str):
    """GET a launch URL and check that it answered with a notification's form page (the EMR button's one round
    trip: no redirect), naming the form's own URL as canonical. Returns the response."""
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    assert response.templates and response.templates[0].name == "notifications/form.html"
    form_url = response.context["form_url"]
    html = response.content.decode()
    assert f'<link rel="canonical" href="{form_url}">' in html  # portal.js puts it in the address bar
    assert f'<form method="post" action="{form_url}" id="notification-form"' in html  # saves go to the form URL
    assert response["Referrer-Policy"] == "strict-origin"  # its stylesheet and script never carry the launch URL
    return response


def confirm_demo_patient(hospital, physician, ref: str = "1100000002"):
    """A demo FHIR patient's extract received, opened as a draft and confirmed as a confirmed patient through the
    service (the published 2021-03 form). Returns (notification, delivery); the on-commit enqueue runs as the
    caller's transaction decides (wrap in `django_capture_on_commit_callbacks(execute=False)` to keep it queued)."""
    from assist_portal.notifications import services as nsvc

    data = json.loads((DEMO_SAMPLES / "fhir" / f"{ref}.json").read_text())
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=ref, data=data))
    notification = nsvc.notification_open_from_extract(extract, physician)
    values = dict(notification.values)
    values["report.diagnosis_class"] = "confirmed_patient"
    row, evaluation, delivery = nsvc.notification_confirm(notification, physician, values, notification.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


def worker_env(sandbox_handle, extra: dict | None = None) -> dict:
    """Environment for a real Celery worker subprocess on the test database and the test Redis."""
    import os

    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    db = connection.settings_dict
    env.update({
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PATIENT_DATA_KEYS": ",".join(settings.PATIENT_DATA_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "HERSYS_API_URL": sandbox_handle.url,
        "HERSYS_PKI_DIR": str(sandbox_handle.pki.dir),
        "HERSYS_CLIENT_ID": sandbox_handle.client_id,
        "HERSYS_CLIENT_SECRET": sandbox_handle.client_secret,
        "DELIVERY_BACKOFF_BASE": "0.2",
        "DELIVERY_BACKOFF_CAP": "1",
        "HERSYS_TIMEOUT_SECONDS": "3",
    })
    env.update(extra or {})
    return env


class CeleryWorker:
    """A real `celery worker` process consuming the `hersys` queue."""

    def __init__(self, env: dict, log_path, concurrency: int = 1, queues: str = "hersys"):
        import subprocess
        import sys

        from tests.conftest import ROOT

        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "assist_portal.celery", "worker", "-Q", queues, "-c",
             str(concurrency), "-l", "INFO", "-n", f"test-{id(self)}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig=None):
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig or signal.SIGKILL)
            self.proc.wait(20)

    def stop(self):
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        try:  # pool children that outlived their parent would keep database sessions open
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


@pytest.fixture
def celery_worker_factory(sandbox, transactional_db, tmp_path):
    from assist_portal.celery import app

    app.control.purge()
    workers = []

    def start(**kwargs):
        worker = CeleryWorker(worker_env(sandbox, kwargs.pop("env", None)), tmp_path / f"worker{len(workers)}.log",
                              **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.control.purge()


def confirm_post(client, notification, data: dict, *, answer: str = "unknown", change_physician: bool = True,
                 otp_device=None):
    """Post 確定 the way a physician does now: the form's 確定 (validation) → the review step → the final click,
    answering every empty medical-judgement item with `answer` (不明 by default), changing the form's physician to
    the confirming one when they differ, and giving a fresh TOTP code when the review asks for one. Returns the
    last response: the form page again (400) when validation failed, else the final click's answer (302 to the
    status page when confirmed)."""
    from django.urls import reverse

    response = client.post(reverse("notifications:form", args=[notification.uuid]), data)
    review_url = reverse("notifications:review", args=[notification.uuid])
    if response.status_code != 302 or response["Location"] != review_url:
        return response
    page = client.get(review_url)
    assert page.status_code == 200, page.content.decode()[:2000]
    review = page.context["review"]
    post = {"lock_version": page.context["lock_version"], "digest": review.digest, "action": "confirm"}
    for need in review.needs_answer:
        post[need["field"]] = answer
    if review.physician_differs and change_physician:
        post["change_physician"] = "1"
    if page.context["otp_needed"]:
        device = otp_device or TOTPDevice.objects.get(user=page.context["user"])
        post["otp_token"] = current_totp(device)
    return client.post(review_url, post)


@pytest.fixture
def draft(db, published, physician, clerk):
    """A draft the clerk opened from the EMR button (SS-MIX2 extract of 1100000002), with a physician in the same
    hospital: what the concurrent-edit and nothing-is-lost tests start from."""
    from django.test import Client

    published("2021-03")
    return open_from_emr(Client(), clerk, "1100000002")


@pytest.fixture(autouse=True, scope="session")
def published_definitions_stay_as_published():
    """The process keeps one parsed copy of each published definition's content (FormDefinition.refresh_from_db):
    code that changed such a copy in place would change the form for every later request. After the session every
    copy must still hash to the content hash it is kept under."""
    yield
    from assist_portal.formdefs.models import _PUBLISHED_CONTENT
    from formengine import content_hash

    changed = [key for key, content in _PUBLISHED_CONTENT.items() if content_hash(content) != key]
    assert not changed, f"a published definition's content was changed in place: {changed}"
