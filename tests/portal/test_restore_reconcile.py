"""Backup → more confirmations → restore → `manage.py reconcile` (issue 12), on real PostgreSQL (pg_dump /
pg_restore of the test database) and the real sandbox.

After the dump: a draft is confirmed, a notification is amended, a new patient is filed, a pending delivery is
sent, and one notification is confirmed and then — after the restore, before anyone reconciles — confirmed again with
a changed value. The restore forgets all of it; HER-SYS does not. Reconciliation must leave no patient filed twice
and no changed value silently dropped or answered with old values.
"""
import io
import json
import os
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.models import Notification
from tests.conftest import DEMO_SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PATIENTS = {"A": "1100000002", "C": "1200000030", "D": "1700000014", "E": "2200000007", "F": "2400000017"}
PHONE = "patient.phone"


def extract_of(hospital, key):
    ref = PATIENTS[key]
    bundle = json.loads((DEMO_SAMPLES / "fhir" / f"{ref}.json").read_text(encoding="utf-8"))
    return nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=ref, data=bundle))


def open_(hospital, physician, key) -> Notification:
    from django.db import transaction

    with transaction.atomic():
        return nsvc.notification_open_from_extract(extract_of(hospital, key), physician)


def confirm(notification, physician, **change):
    row = Notification.objects.get(pk=notification.pk)
    values = {**row.values, "report.diagnosis_class": "confirmed_patient", **change}
    row, evaluation, delivery = nsvc.notification_confirm(row, physician, values, row.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return delivery


def send(delivery):
    return delivery_attempt(delivery.pk)


def pg(*args: str) -> None:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    base = ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres"]
    subprocess.run([args[0], *base, *args[1:]], check=True, env=env, capture_output=True)


def held_phone(sandbox, uuid):
    [note] = [n for n in sandbox.received()["notifications"] if n["bundle_identifier"] == str(uuid)]
    qr = next(e["resource"] for e in note["revisions"][-1]["bundle"]["entry"]
              if e["resource"]["resourceType"] == "Patient")
    return note, qr.get("telecom", [{}])[0].get("value")


def test_backup_more_confirmations_restore_reconcile(hospital, physician, published, sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr("assist_portal.delivery.services.delivery_enqueue", lambda *a, **k: None)  # no workers
    published("2021-03")
    a = open_(hospital, physician, "A")
    assert send(confirm(a, physician)).status == Delivery.Status.ACCEPTED
    c = open_(hospital, physician, "C")
    c_delivery = confirm(c, physician)  # pending in the dump
    d = open_(hospital, physician, "D")  # a draft in the dump
    f = open_(hospital, physician, "F")

    dump = tmp_path / "portal.dump"
    connection.close()
    pg("pg_dump", "-Fc", "-d", connection.settings_dict["NAME"], "-f", str(dump))
    dumped_at = timezone.now()

    # -- after the dump: HER-SYS learns things the restored portal will not know ------------------------------
    assert send(confirm(d, physician, **{PHONE: "090-1111-1111"})).status == Delivery.Status.ACCEPTED
    assert send(confirm(a, physician, **{PHONE: "090-2222-2222"})).status == Delivery.Status.ACCEPTED  # r2
    e = open_(hospital, physician, "E")
    assert send(confirm(e, physician)).status == Delivery.Status.ACCEPTED
    assert send(c_delivery).status == Delivery.Status.ACCEPTED
    assert send(confirm(f, physician, **{PHONE: "090-3333-3333"})).status == Delivery.Status.ACCEPTED
    e_uuid = e.uuid
    before = {n["bundle_identifier"]: n["receipt_id"] for n in sandbox.received(False)["notifications"]}
    assert len(before) == 5

    # -- restore ------------------------------------------------------------------------------------------------
    connection.close()
    pg("pg_restore", "--clean", "--if-exists", "--no-owner", "-d", connection.settings_dict["NAME"], str(dump))
    assert Notification.objects.get(pk=d.pk).status == Notification.Status.DRAFT
    assert not Notification.objects.filter(uuid=e_uuid).exists()
    assert Notification.objects.get(pk=a.pk).revision == 1

    # Someone re-confirms F with a changed value before anyone reconciles: HER-SYS holds F's revision 1 with other
    # content; the delivery must not come back 受理 with the old values' receipt.
    f_second = confirm(f, physician, **{PHONE: "090-4444-4444"})
    f_row = send(f_second)
    assert f_row.status == Delivery.Status.REJECTED and f_row.receipt_id == ""
    assert "別の内容" in f_row.last_error

    # -- reconcile ----------------------------------------------------------------------------------------------
    out = io.StringIO()
    call_command("reconcile", since=dumped_at.isoformat(), stdout=out)
    text = out.getvalue()
    print(text)
    assert "H0001: HER-SYSの届出 5件を照合" in text

    d_row = Notification.objects.get(pk=d.pk)  # confirmed after the dump: taken back from HER-SYS
    assert (d_row.status, d_row.revision) == (Notification.Status.CONFIRMED, 1)
    assert d_row.values[PHONE] == "090-1111-1111"
    d_delivery = d_row.revisions.get(number=1).delivery
    assert (d_delivery.status, d_delivery.receipt_id) == (Delivery.Status.ACCEPTED, before[str(d.uuid)])
    a_row = Notification.objects.get(pk=a.pk)
    assert a_row.revision == 2 and a_row.values[PHONE] == "090-2222-2222"
    assert Delivery.objects.get(pk=c_delivery.pk).status == Delivery.Status.ACCEPTED  # HER-SYS had it: no resend
    assert Delivery.objects.get(pk=c_delivery.pk).receipt_id == before[str(c.uuid)]
    e_row = Notification.objects.get(uuid=e_uuid)  # forgotten entirely: recreated, patient not yet known
    assert e_row.patient_ref == "" and e_row.revision == 1 and e_row.status == Notification.Status.CONFIRMED
    assert "reconcile: needs_person=" in text and str(e_uuid) in text.split("人の対応が必要なもの:")[1]
    assert str(f.uuid) in text.split("人の対応が必要なもの:")[1]  # F: HER-SYS and the portal differ

    # Running it again changes nothing.
    again = io.StringIO()
    call_command("reconcile", since=dumped_at.isoformat(), stdout=again)
    assert Notification.objects.get(uuid=e_uuid).revision == 1 and Notification.objects.get(pk=a.pk).revision == 2

    # -- people go on ---------------------------------------------------------------------------------------
    # E's next EMR launch finds the notification HER-SYS holds: an update, never a second filing.
    e_again = open_(hospital, physician, "E")
    assert e_again.uuid == e_uuid and e_again.patient_ref == PATIENTS["E"]
    assert send(confirm(e_again, physician, **{PHONE: "090-5555-5555"})).status == Delivery.Status.ACCEPTED
    # D re-confirmed with a changed value: an update above what HER-SYS holds, with the new value.
    assert send(confirm(d_row, physician, **{PHONE: "090-6666-6666"})).status == Delivery.Status.ACCEPTED
    # F, rejected before the reconcile: confirmed once more, the changed value reaches HER-SYS.
    assert send(confirm(f, physician, **{PHONE: "090-4444-4444"})).status == Delivery.Status.ACCEPTED

    notes = sandbox.received(False)["notifications"]
    assert len(notes) == 5  # no patient filed twice
    assert held_phone(sandbox, e_uuid)[1] == "090-5555-5555"
    assert held_phone(sandbox, d.uuid) == (held_phone(sandbox, d.uuid)[0], "090-6666-6666")
    note_f, phone_f = held_phone(sandbox, f.uuid)
    assert phone_f == "090-4444-4444" and note_f["revision"] == 2  # no changed value silently dropped
    by_patient = {}
    for n in Notification.objects.filter(hospital=hospital):
        by_patient.setdefault(n.patient_ref, []).append(n.uuid)
    assert all(len(v) == 1 for v in by_patient.values()), by_patient
