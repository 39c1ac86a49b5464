"""The confirming process of tests/chaos/test_confirm_kill.py: confirms notifications the way a physician does,
one after another, until it is SIGKILLed. Prints one line per committed confirmation.

    python -m tests.chaos.confirmer HOSPITAL_CODE USERNAME PREFIX

The moments right after each commit are stretched (a few ms of sleep in the test harness, not in the product), so
that random kills often land between a transaction's commit and whatever would come after it: a product that wrote
its outbox row after the confirm commit is caught there. CHAOS_PLANT_OUTBOX_AFTER_COMMIT=1 plants that very bug
(the outbox row written in an on-commit hook) to show the test catching it.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assist_portal.settings")
    django.setup()
    from django.db import transaction
    from django.db.backends.base.base import BaseDatabaseWrapper

    from assist_portal.accounts.models import Hospital, User
    from assist_portal.notifications import services as nsvc
    from tests.conftest import DEMO_SAMPLES

    commit = BaseDatabaseWrapper.commit

    def stretched_commit(self):
        commit(self)
        time.sleep(random.uniform(0.0, 0.03))

    BaseDatabaseWrapper.commit = stretched_commit
    if os.environ.get("CHAOS_PLANT_OUTBOX_AFTER_COMMIT") == "1":
        _plant_outbox_after_commit()

    code, username, prefix = sys.argv[1:4]
    hospital = Hospital.objects.get(code=code)
    physician = User.objects.get(username=username)
    bundle = json.loads((DEMO_SAMPLES / "fhir" / "1100000002.json").read_text(encoding="utf-8"))
    print("confirmer ready", flush=True)
    serial = 0
    while True:
        serial += 1
        extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=f"{prefix}{serial:05d}",
                                                                     data=bundle))
        with transaction.atomic():
            notification = nsvc.notification_open_from_extract(extract, physician)
        values = {**notification.values, "report.diagnosis_class": "confirmed_patient"}
        nsvc.notification_confirm(notification, physician, values, notification.lock_version)
        print(f"confirmed {notification.uuid}", flush=True)


def _plant_outbox_after_commit() -> None:
    """THE BUG the kill test exists to catch: the outbox row written after the confirm transaction committed."""
    from django.db import transaction

    from assist_portal.notifications import services as nsvc
    from assist_portal.notifications.models import NotificationRevision

    real = nsvc.delivery_create

    def deferred(*, payload, hospital, stream, sequence):
        def later():
            delivery = real(payload=payload, hospital=hospital, stream=stream, sequence=sequence)
            NotificationRevision.objects.filter(payload=payload).update(delivery=delivery)

        transaction.on_commit(later)
        return None

    nsvc.delivery_create = deferred


if __name__ == "__main__":
    main()
