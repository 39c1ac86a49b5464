"""Onboarding and keys: central admins create and deactivate hospitals; connector keys are generated, shown once,
stored hashed, named, rotated with an overlap, revoked, with last-used time; deactivating a hospital stops its
staff and keys at once."""
import hashlib
import os
import stat
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.accounts.models import ConnectorKey, Hospital, User
from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp, launch_path, push_extract

pytestmark = [pytest.mark.django_db, pytest.mark.security]

PATIENT = "1100000002"


def fhir_push(client, key, patient=PATIENT):
    return push_extract(client, patient, "fhir", key)


def shown_key(response) -> str:
    html = response.content.decode()
    assert 'id="connector-key"' in html, html[:2000]
    return html.split('id="connector-key">', 1)[1].split("</code>", 1)[0]


def test_deactivating_a_hospital_stops_its_staff_and_keys_at_once(client, hospital, physician, clerk,
                                                                  hospital_admin, central_admin, published, push,
                                                                  login):
    from assist_portal.notifications import selectors, services

    published("2021-03")
    doctor, desk, admin = login(Client(), physician), login(Client(), clerk), login(Client(), hospital_admin)
    launch = push(client, PATIENT).json()["launch_url"]
    doctor.get(launch_path(launch))
    notification = selectors.notifications_for_user(physician).get()
    second_launch = push(client, PATIENT).json()["launch_url"]
    pages = [reverse("notifications:list"), reverse("notifications:form", args=[notification.uuid]),
             reverse("notifications:status-json", args=[notification.uuid]),
             reverse("notifications:print", args=[notification.uuid])]
    assert all(doctor.get(url).status_code == 200 for url in pages)

    login(client, central_admin)
    assert client.post(reverse("central:hospital-active", args=[hospital.pk]), {"active": "0"}).status_code == 302
    assert AuditEvent.objects.filter(action="hospital.deactivate", hospital_code="H0001").exists()

    # Open sessions get nothing: worklist, form, status, print, launch, save; administrators neither.
    for session in (doctor, desk):
        for url in pages:
            assert session.get(url).status_code == 403, url
        assert session.get(launch_path(second_launch)).status_code == 403
    saved = doctor.post(reverse("notifications:form", args=[notification.uuid]),
                        {"lock_version": notification.lock_version, "action": "save"})
    assert saved.status_code == 403
    assert admin.get(reverse("hospitaladmin:staff")).status_code == 403
    # The services refuse too (not only the views).
    physician.refresh_from_db()
    assert not physician.is_hospital_staff and not physician.is_physician
    assert not selectors.notifications_for_user(physician).exists()
    with pytest.raises(services.NotAllowed):
        services.notification_save(notification, physician, notification.values, notification.lock_version)
    with pytest.raises(services.NotAllowed):
        services.notification_confirm(notification, physician, notification.values, notification.lock_version)
    # The connector key: refused, like an unknown one.
    refused = push(Client(), PATIENT)
    assert refused.status_code == 401 and refused.json()["detail"] == "APIキーが正しくありません。"
    assert Client().get("/api/v1/notifications", HTTP_AUTHORIZATION="Api-Key key-h0001").status_code == 401
    # A new sign-in is refused with the one message.
    device = TOTPDevice.objects.get(user=physician)
    signin = Client().post(reverse("accounts:login"), {"username": physician.username, "password": PASSWORD,
                                                      "otp_token": current_totp(device)})
    assert signin.status_code == 401

    # Reactivation brings it all back.
    assert client.post(reverse("central:hospital-active", args=[hospital.pk]), {"active": "1"}).status_code == 302
    assert doctor.get(pages[0]).status_code == 200 and push(Client(), PATIENT).status_code == 201


def test_a_key_is_shown_once_stored_hashed_rotated_with_overlap_and_revoked(client, hospital, central_admin, login,
                                                                            published):
    published("2021-03")
    login(client, central_admin)
    url = reverse("central:hospital-keys", args=[hospital.pk])
    assert client.post(url, {"create": "1", "name": ""}).status_code == 400  # a name is required
    created = client.post(url, {"create": "1", "name": "本院DMZ 連携サーバー1"})
    first = shown_key(created)
    row = ConnectorKey.objects.get(name="本院DMZ 連携サーバー1")
    assert row.key_hash == hashlib.sha256(first.encode()).hexdigest() and first.startswith(row.prefix)
    assert first not in str(list(ConnectorKey.objects.values()))
    page = client.get(reverse("central:hospital-detail", args=[hospital.pk])).content.decode()
    assert first not in page and row.prefix in page  # never shown again, only its first characters
    assert row.last_used_at is None
    assert fhir_push(Client(), first).status_code == 201
    row.refresh_from_db()
    assert row.last_used_at is not None

    # Rotation: a new key; the old one keeps working during the overlap, then stops.
    rotated = client.post(url, {"rotate": row.pk, "overlap_hours": "2"})
    second = shown_key(rotated)
    row.refresh_from_db()
    assert second != first and row.replaced_by.key_hash == hashlib.sha256(second.encode()).hexdigest()
    assert timedelta(hours=1.9) < row.expires_at - timezone.now() <= timedelta(hours=2)
    assert fhir_push(Client(), first).status_code == 201 and fhir_push(Client(), second).status_code == 201
    assert client.post(url, {"rotate": row.pk}).status_code == 400  # a replaced key is not rotated twice
    ConnectorKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # overlap over
    assert fhir_push(Client(), first).status_code == 401
    assert fhir_push(Client(), second).status_code == 201

    # Revocation: at once.
    new_row = ConnectorKey.objects.get(key_hash=hashlib.sha256(second.encode()).hexdigest())
    assert client.post(url, {"revoke": new_row.pk}).status_code == 302
    assert fhir_push(Client(), second).status_code == 401
    actions = list(AuditEvent.objects.filter(action__startswith="connector_key.").values_list("action", flat=True))
    assert sorted(actions) == ["connector_key.create", "connector_key.revoke", "connector_key.rotate"]
    everything = " ".join(str(e.detail) + e.object_id for e in AuditEvent.objects.all())
    assert first not in everything and second not in everything
    # Ids that are not ASCII digits, or of another hospital's key: 404.
    other = ConnectorKey.objects.exclude(hospital=hospital).first()
    for bad in ("²", "1 OR 1=1", str(other.pk) if other else "999999"):
        assert client.post(url, {"revoke": bad}).status_code == 404


def test_hospital_admin_manages_its_own_keys_only(client, hospital, other_hospital, hospital_admin, login):
    login(client, hospital_admin)
    page = client.get(reverse("hospitaladmin:settings"))
    assert page.status_code == 200 and hospital.name in page.content.decode()
    secret = shown_key(client.post(reverse("hospitaladmin:keys"), {"create": "1", "name": "予備機"}))
    assert ConnectorKey.objects.get(key_hash=hashlib.sha256(secret.encode()).hexdigest()).hospital == hospital
    foreign = ConnectorKey.objects.get(hospital=other_hospital)
    assert client.post(reverse("hospitaladmin:keys"), {"revoke": foreign.pk}).status_code == 404
    assert client.post(reverse("hospitaladmin:keys"), {"rotate": foreign.pk}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.is_usable()
    # The central pages stay closed to a hospital administrator.
    assert client.get(reverse("central:hospital-detail", args=[hospital.pk])).status_code == 403


def test_central_admin_onboards_a_hospital(client, central_admin, published, login):
    definition = published("2022-09")
    login(client, central_admin)
    base = {"name": "やまびこ病院", "address": "長野県長野市１−１", "phone": "026-000-0000",
            "health_centre_name": "長野市保健所", "health_centre_code": "2020"}
    for code, fields in (("H²01", {}), ("H0101", {"name": ""}), ("H0101", {"address": "a\x00b"})):
        bad = client.post(reverse("central:hospital-new"), {**base, "code": code, **fields})
        assert bad.status_code == 400, (code, fields)
    response = client.post(reverse("central:hospital-new"), {**base, "code": "H0101"})
    hospital = Hospital.objects.get(code="H0101")
    assert response["Location"] == reverse("central:hospital-detail", args=[hospital.pk])
    assert hospital.health_centre_name == "長野市保健所" and hospital.is_active
    assert client.post(reverse("central:hospital-new"), {**base, "code": "H0101"}).status_code == 400  # duplicate
    edit = client.post(reverse("central:hospital-detail", args=[hospital.pk]), {**base, "phone": "026-111-1111"})
    assert edit.status_code == 302
    hospital.refresh_from_db()
    assert hospital.phone == "026-111-1111"
    assert client.post(reverse("central:hospital-assign", args=[hospital.pk]), {"definition": "abc"}).status_code == 400
    assert client.post(reverse("central:hospital-assign", args=[hospital.pk]),
                       {"definition": definition.pk}).status_code == 302
    from assist_portal.formdefs.selectors import definition_for_hospital

    assert definition_for_hospital(hospital) == definition
    # Its administrator, then a key: the hospital can start.
    admin_page = client.post(reverse("central:users"), {"username": "yamabiko_admin", "email": "it@yamabiko.example",
                                                       "role": "hospital_admin", "hospital": hospital.pk})
    assert admin_page.status_code == 200
    assert User.objects.get(username="yamabiko_admin").hospital == hospital
    key = shown_key(client.post(reverse("central:hospital-keys", args=[hospital.pk]),
                                {"create": "1", "name": "DMZ"}))
    assert key.startswith("hk_")
    assert {"hospital.create", "hospital.edit", "hospital.assign", "user.create", "connector_key.create"} <= \
        set(AuditEvent.objects.filter(hospital_code="H0101").values_list("action", flat=True))


def test_onboarding_commands(tmp_path, published):
    definition = published("2021-03")
    out = StringIO()
    call_command("hospital", "create", "H0201", "--name", "うみかぜ病院", "--address", "神奈川県横浜市１",
                 "--phone", "045-000-0000", "--health-centre-name", "横浜市保健所", "--definition",
                 str(definition.pk), stdout=out)
    hospital = Hospital.objects.get(code="H0201")
    with pytest.raises(CommandError):
        call_command("hospital", "create", "H0201", "--name", "x", "--address", "y", "--phone", "1")
    key_file = tmp_path / "connector.key"
    call_command("connector_key", "create", "H0201", "--name", "DMZ-1", "--out", str(key_file), stdout=out)
    secret = key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and secret not in out.getvalue()
    assert fhir_push(Client(), secret).status_code == 201
    row = ConnectorKey.objects.get(hospital=hospital)
    out = StringIO()
    call_command("connector_key", "rotate", "H0201", str(row.pk), "--overlap-hours", "0", stdout=out)
    new_secret = out.getvalue().split("キー（一度だけ表示します）: ", 1)[1].strip()
    assert fhir_push(Client(), secret).status_code == 401 and fhir_push(Client(), new_secret).status_code == 201
    listing = StringIO()
    call_command("connector_key", "list", "H0201", stdout=listing)
    assert "DMZ-1" in listing.getvalue() and new_secret not in listing.getvalue()
    call_command("hospital", "deactivate", "H0201", stdout=StringIO())
    assert fhir_push(Client(), new_secret).status_code == 401
    call_command("hospital", "reactivate", "H0201", stdout=StringIO())
    assert fhir_push(Client(), new_secret).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_each_hospitals_key_hash_into_a_key_row():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("accounts", "0005_sign_in_throttle")], [("accounts", "0006_hospital_onboarding_and_connector_keys")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldHospital = old_apps.get_model("accounts", "Hospital")
        OldHospital.objects.create(code="HM01", name="移行病院", address="a", phone="0",
                                   api_key_hash=hashlib.sha256(b"legacy-key").hexdigest())
        OldHospital.objects.create(code="HM02", name="キーなし病院", address="a", phone="0", api_key_hash="")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    row = ConnectorKey.objects.get()
    assert row.hospital.code == "HM01" and row.is_usable()
    assert fhir_push(Client(), "legacy-key").status_code in (201, 400)  # authenticated (400: no published form)
    assert fhir_push(Client(), "legacy-key").status_code != 401
