"""Querysets compiled once per process (assist_portal.sqlcache, issue 13): the navigation's counts give what the
ORM gives for every state, hospital and moment, and a query whose SQL depends on its arguments' values is
refused rather than bound wrongly."""
import os
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from assist_portal.delivery.models import Delivery
from assist_portal.notifications.models import Notification
from assist_portal.notifications.selectors import WORK_STATES, with_work_state, worklist_counts
from assist_portal.sqlcache import CompiledQuery
from tests.portal.test_workflow import launched  # noqa: F401  (fixture)
from tests.portal.test_worklist import cases, open_patient  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
# Row locks and the ORM's refusal of select_for_update outside a transaction exist on PostgreSQL (make test, CI);
# SQLite has neither, and its flush after a transactional test meets the append-only audit trigger.
needs_postgres = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                    reason="row locks need PostgreSQL (make test provides it)")


def orm_counts(hospital_id, now):
    counts = {s.value: 0 for s in WORK_STATES}
    rows = (with_work_state(Notification.objects.filter(hospital_id=hospital_id).order_by(), now, reasons=False)
            .values("work_state").annotate(n=Count("pk")))
    for row in rows:
        counts[row["work_state"]] = row["n"]
    return counts


def test_the_compiled_counts_are_the_orm_counts_for_every_state_hospital_and_moment(
        cases, clerk, make_user, other_hospital, settings):  # noqa: F811 (`cases` is the fixture imported above)
    other = make_user("b_clerk", "clerk", other_hospital)
    open_patient(other_hospital, other)  # another hospital's case: never counted for this one
    sending = cases["sending"].revisions.get()
    Delivery.objects.filter(pk=sending.delivery_id).update(created_at=timezone.now() - timedelta(minutes=45))
    now = timezone.now()
    seen = []
    for minutes in (60, 30):  # the threshold moves with the setting
        settings.ACCEPTANCE_ALERT_MINUTES = minutes
        for moment in (now, now + timedelta(hours=2), now - timedelta(days=1)):
            for user in (clerk, other):
                got = worklist_counts(user, now=moment)
                assert got == orm_counts(user.hospital_id, moment)
                seen.append(got)
    assert seen[0]["attention"] == 1 and seen[6]["attention"] == 2  # 45 minutes: overdue at 30, not at 60
    assert seen[1] == {**{s.value: 0 for s in WORK_STATES}, "input": 1}


def test_a_query_whose_sql_depends_on_a_value_is_refused():
    def build(limit):
        return Notification.objects.values_list("pk", flat=True)[:limit]  # LIMIT is SQL text, not a parameter

    with pytest.raises(ValueError, match="depends on the values"):
        CompiledQuery(build).rows(3)


def test_arguments_are_bound_in_their_own_places(hospital, clerk, published):
    published("2021-03")
    a = open_patient(hospital, clerk, "1100000002")
    query = CompiledQuery(lambda hospital_id, ref: Notification.objects.filter(hospital_id=hospital_id,
                                                                            patient_ref=ref).values_list("pk"))
    assert query.rows(hospital.pk, a.patient_ref) == [(a.pk,)]
    assert query.rows(hospital.pk, "nobody") == []
    assert query.rows(hospital.pk + 1, a.patient_ref) == []


def _fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_user_with_its_hospital_and_the_second_factor_device_are_what_the_orm_loads(physician, make_user,
                                                                                      django_assert_num_queries):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from assist_portal.accounts.models import User
    from assist_portal.sqlcache import model_first

    central = make_user("central_sato", "central_admin")
    for user in (physician, central):
        expected = User.objects.select_related("hospital").get(pk=user.pk)
        with django_assert_num_queries(1):
            got = model_first(User, "pk", user.pk, related=("hospital",))
            hospital = got.hospital  # loaded with the user, no second query
        assert _fields(got) == _fields(expected)
        assert (hospital and _fields(hospital)) == (expected.hospital and _fields(expected.hospital))
        assert not got._state.adding and got._state.db == "default"
    assert model_first(User, "pk", 987654, related=("hospital",)) is None

    device = TOTPDevice.objects.get(user=physician)
    got = model_first(TOTPDevice, "id", device.pk)
    assert _fields(got) == _fields(device) and got.key == device.key
    assert model_first(TOTPDevice, "id", 987654) is None


def test_a_session_with_another_users_device_is_not_verified(client, physician, clerk):
    """The device named in the session must belong to the signed-in user (django-otp's binding, kept)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(physician)
    session = client.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=clerk).persistent_id
    session.save()
    page = client.get("/notifications/")
    assert page.status_code == 302 and "/accounts/" in page["Location"]
    session = client.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=physician).persistent_id
    session.save()
    assert client.get("/notifications/").status_code == 200


@needs_postgres
@pytest.mark.django_db(transaction=True)  # autocommit outside the atomic block, as in a request
def test_a_locking_query_is_refused_outside_a_transaction_as_the_orm_refuses_it(hospital, clerk, published):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    from assist_portal.notifications.services import _LOCKED  # every save's and confirmation's locked read

    published("2021-03")
    a = open_patient(hospital, clerk, "1100000002")
    with transaction.atomic():
        row = _LOCKED.first(a.pk)
    expected = Notification.objects.select_related("definition", "hospital").get(pk=a.pk)
    assert _fields(row) == _fields(expected) and row.values == a.values
    assert _fields(row.definition) == _fields(expected.definition) and row.hospital.code == hospital.code
    with pytest.raises(TransactionManagementError):
        _LOCKED.first(a.pk)


def test_the_session_engine_reads_no_session_without_a_key_or_after_expiry(physician, client):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from assist_portal.accounts.sessions import SessionStore

    assert SessionStore(None)._get_session_from_db() is None
    client.force_login(physician)
    key = client.session.session_key
    assert SessionStore(key).load().get("_auth_user_id") == str(physician.pk)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    store = SessionStore(key)
    assert store.load() == {} and store.session_key is None


def test_arguments_of_another_type_later_are_refused_and_an_impossible_id_finds_nothing(hospital, physician):
    from assist_portal.accounts.models import User
    from assist_portal.sqlcache import model_first

    query = CompiledQuery(lambda ref: Notification.objects.filter(patient_ref=ref).values_list("pk"))
    assert query.rows("P-1") == []
    for wrong in (None, 5):
        with pytest.raises(TypeError):
            query.rows(wrong)
    assert model_first(User, "pk", 1 << 63, related=("hospital",)) is None
    assert model_first(User, "pk", physician.pk, related=("hospital",)).username == physician.username


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_locking_a_notification_or_a_launch_token_does_not_lock_the_hospital_row(hospital, clerk, published):
    """Every push, launch and confirmation of a hospital reads its row: a lock on it would serialise them and can
    deadlock a push against a launch (review of issue 13's round 4)."""
    import threading

    from django.db import OperationalError, connection, transaction

    from assist_portal.accounts.models import Hospital
    from assist_portal.notifications import services

    published("2021-03")
    draft = open_patient(hospital, clerk, "1100000002")
    url, _ = services.launch_token_issue(draft.extract)
    jti = services._launch_jti(url.rstrip("/").rsplit("/", 1)[1])
    for lock in (lambda: services._LOCKED.first(draft.pk), lambda: services._LAUNCH_ROW.first(jti),
                 lambda: services._PatientCases(hospital, "1100000002", draft.form)):
        held, release = threading.Event(), threading.Event()

        def hold(lock=lock, held=held, release=release):
            try:
                with transaction.atomic():
                    lock()
                    held.set()
                    release.wait(10)
            finally:
                connection.close()

        worker = threading.Thread(target=hold)
        worker.start()
        try:
            assert held.wait(10)
            with transaction.atomic():
                try:
                    Hospital.objects.select_for_update(nowait=True).get(pk=hospital.pk)
                except OperationalError:
                    pytest.fail("the hospital row was locked with the notification or the token")
        finally:
            release.set()
            worker.join()


def test_the_physicians_offered_for_a_hand_off_are_the_active_ones_of_the_hospital(hospital, other_hospital,
                                                                                   make_user, physician):
    from assist_portal.accounts.models import User
    from assist_portal.notifications.selectors import hospital_physicians

    make_user("dr_b", "physician", hospital, display_name="あべ")
    make_user("clerk_b", "clerk", hospital)
    make_user("dr_other", "physician", other_hospital)
    gone = make_user("dr_gone", "physician", hospital)
    gone.is_active = False
    gone.save()
    for h in (hospital, other_hospital):
        orm = list(User.objects.filter(hospital=h, role="physician", is_active=True).order_by("display_name",
                                                                                               "username"))
        compiled = hospital_physicians(h.pk)
        assert [u.pk for u in compiled] == [u.pk for u in orm] and compiled
        assert [str(u) for u in compiled] == [str(u) for u in orm]
    assert {u.username for u in hospital_physicians(hospital.pk)} == {physician.username, "dr_b"}


# -- CompiledWrites -------------------------------------------------------------------------------------------------

def _compiled_insert_models():
    from django.apps import apps

    from assist_portal.sqlcache import CompiledWrites

    return [m for m in apps.get_models() if issubclass(m, CompiledWrites)]


def test_models_written_by_compiled_inserts_have_no_save_signal_receivers():
    """A compiled INSERT sends no pre_save/post_save: a receiver added to such a model would silently never run."""
    from django.db.models import signals

    models = _compiled_insert_models()
    assert {m.__name__ for m in models} >= {"AuditEvent", "Payload", "Delivery", "Attempt", "NotificationRevision", "Notification"}
    for model in models:
        for signal in (signals.pre_save, signals.post_save):
            assert not signal.has_listeners(model), f"{model.__name__} has a {signal} receiver"


def _stored(model, pk):
    return model.objects.filter(pk=pk).values().get()


def test_a_compiled_insert_stores_what_the_orm_stores(hospital):
    """The same instance content written through the compiled INSERT and through Django's own save gives the same
    row (defaults, JSON, an IP address, encryption at rest, the payload's hash, a foreign key)."""
    from django.db import models

    from assist_portal.audit.models import AuditEvent
    from assist_portal.delivery.models import Payload

    def audit():
        return AuditEvent(action="notification.view", actor_id=7, actor_username="dr", actor_role="physician",
                          hospital_code=hospital.code, object_type="x", object_id="y", ip="192.0.2.1",
                          user_agent="ua", detail={"a": [1, "二"], "b": None})

    fast, slow = audit(), audit()
    fast.save()
    models.Model.save(slow)
    assert fast.pk and slow.pk and fast.pk != slow.pk and not fast._state.adding
    a, b = _stored(AuditEvent, fast.pk), _stored(AuditEvent, slow.pk)
    a.pop("id"), b.pop("id"), a.pop("at"), b.pop("at")
    assert a == b

    payload = Payload.objects.create(content=b"{\"resourceType\": \"Bundle\"}", content_type="application/fhir+json")
    again = Payload.objects.get(pk=payload.pk)
    assert bytes(again.content) == b"{\"resourceType\": \"Bundle\"}"
    assert again.sha256 == payload.sha256 and len(payload.sha256) == 64
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT content FROM delivery_payload WHERE id = %s", [payload.pk])
        stored = cursor.fetchone()[0]
        assert stored and "Bundle" not in (stored if isinstance(stored, str) else bytes(stored).decode("latin-1"))
    delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1,
                                       idempotency_key="s:1:x")
    stored = Delivery.objects.get(pk=delivery.pk)
    assert (stored.payload_id, stored.hospital_id, stored.status, stored.attempts) == (payload.pk, hospital.pk,
                                                                                       "queued", 0)
    stored.status = "sending"
    stored.save(update_fields=["status"])  # an update by the compiled UPDATE
    assert Delivery.objects.get(pk=delivery.pk).status == "sending"


def test_a_failed_compiled_insert_spoils_the_transaction_as_the_orms_does(hospital):
    """An INSERT that fails inside atomic() marks the transaction for rollback: carrying on after catching the
    error is refused (as with the ORM), never a half-written transaction committed."""
    from django.db import IntegrityError, transaction
    from django.db.transaction import TransactionManagementError

    from assist_portal.delivery.models import Payload

    payload = Payload.objects.create(content=b"x", content_type="text/plain")
    Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1, idempotency_key="dup")
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=2, idempotency_key="dup")
        except IntegrityError:
            pass
        Delivery.objects.count()
    assert Delivery.objects.count() == 1


def test_an_unsaved_related_object_is_refused_before_any_insert(hospital):
    from assist_portal.delivery.models import Payload

    with pytest.raises(ValueError, match="unsaved related object"):
        Delivery(payload=Payload(content=b"x", content_type="text/plain"), hospital=hospital, stream="s",
                 sequence=1, idempotency_key="k").save()
    assert Delivery.objects.count() == 0


def test_a_compiled_update_writes_exactly_the_named_columns(hospital):
    """save(update_fields=…) through the compiled UPDATE: the named columns are stored (a foreign key by name, an
    encrypted JSON value), a column changed in memory but not named is not; an expression goes through the ORM; a
    row that is gone raises as Django's does; a failing UPDATE spoils the transaction."""
    from django.db import DatabaseError, IntegrityError, transaction
    from django.db.models import F
    from django.db.transaction import TransactionManagementError

    from assist_portal.delivery.models import Payload

    payload = Payload.objects.create(content=b"x", content_type="text/plain")
    first = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1, idempotency_key="a")
    row = Delivery.objects.get(pk=first.pk)
    row.status, row.last_error, row.receipt_id = "retrying", "タイムアウト", "not-named"
    row.save(update_fields=["status", "last_error"])
    stored = Delivery.objects.get(pk=first.pk)
    assert (stored.status, stored.last_error, stored.receipt_id) == ("retrying", "タイムアウト", "")

    row.status = "queued"
    row.save(update_fields=["status", "status", "hospital", "hospital_id"])  # one column named twice, as Django
    assert Delivery.objects.get(pk=first.pk).status == "queued"

    row.attempts = F("attempts") + 2
    row.save(update_fields=["attempts"])
    assert Delivery.objects.get(pk=first.pk).attempts == 2

    gone = Delivery.objects.get(pk=first.pk)
    gone.pk = 10**9
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        gone.save(update_fields=["status"])

    second = Delivery.objects.create(payload=Payload.objects.create(content=b"y", content_type="text/plain"),
                                     hospital=hospital, stream="s", sequence=2, idempotency_key="b")
    second.idempotency_key = "a"
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            second.save(update_fields=["idempotency_key"])
        except IntegrityError:
            pass
        Delivery.objects.count()
    assert Delivery.objects.get(pk=second.pk).idempotency_key == "b"


def test_a_compiled_update_of_a_notification_encrypts_and_is_read_back(launched):  # noqa: F811
    from assist_portal.notifications.models import Notification as N

    row = N.objects.get(pk=launched.pk)
    row.values = {**row.values, "patient.occupation": "会社員"}
    row.display_name = "試験　太郎"
    row.patient_ref = "not-named"
    row.save(update_fields=["values", "display_name"])
    stored = N.objects.get(pk=launched.pk)
    assert stored.values["patient.occupation"] == "会社員" and stored.display_name == "試験　太郎"
    assert stored.patient_ref == launched.patient_ref
    with connection.cursor() as cursor:
        cursor.execute("SELECT display_name FROM notifications_notification WHERE id = %s", [launched.pk])
        assert "試験" not in str(cursor.fetchone()[0])


def test_model_rows_build_what_raw_builds(hospital):
    """`ModelRows.first` gives the instance `Model.objects.raw` gives for the same SQL: every field converted the
    same way (dates, nulls, foreign keys), extra columns as attributes; no row, None."""
    from django.utils import timezone as tz

    from assist_portal.delivery.models import Payload
    from assist_portal.sqlcache import ModelRows

    payload = Payload.objects.create(content=b"x", content_type="text/plain")
    delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=3,
                                       idempotency_key="k", lease_until=tz.now(), report_date=tz.localdate())
    rows = ModelRows(Delivery)
    sql = f"SELECT {rows.columns('d')}, 41 + 1 AS answer FROM delivery_delivery d WHERE d.id = %s"
    ours = rows.first(sql, [delivery.pk], ("answer",))
    raw = next(iter(Delivery.objects.raw(sql, [delivery.pk])))
    fields = [f.attname for f in Delivery._meta.concrete_fields]
    assert [getattr(ours, f) for f in fields] == [getattr(raw, f) for f in fields]
    assert ours.answer == raw.answer == 42 and ours.lease_until == delivery.lease_until
    assert not ours._state.adding and ours.report_date == delivery.report_date
    assert rows.first(sql, [10**9], ("answer",)) is None


def test_a_deferred_published_definition_is_read_once_per_process(launched, django_assert_num_queries):  # noqa: F811
    """The hot reads leave a definition's JSON out: a published one comes from the process's copy of its content
    (one query the first time, none after), equal to what the database holds; a draft is always read again."""
    from django.db import transaction

    from assist_portal.formdefs import models as formdefs_models
    from assist_portal.formdefs.models import FormDefinition
    from assist_portal.notifications.services import _LOCKED

    formdefs_models._PUBLISHED_CONTENT.clear()
    stored = FormDefinition.objects.get(pk=launched.definition_id).definition
    with transaction.atomic():
        row = _LOCKED.first(launched.pk)
        assert "definition" in row.definition.get_deferred_fields()
        with django_assert_num_queries(1):
            assert row.definition.definition == stored
        again = _LOCKED.first(launched.pk)
        with django_assert_num_queries(0):
            assert again.definition.definition is row.definition.definition

    draft = FormDefinition.objects.create(form="x", version="d1", definition={"a": 1}, content_hash="h")
    assert FormDefinition.objects.defer("definition").get(pk=draft.pk).definition == {"a": 1}
    FormDefinition.objects.filter(pk=draft.pk).update(definition={"a": 2})
    loaded = FormDefinition.objects.defer("definition").get(pk=draft.pk)
    with django_assert_num_queries(1):
        assert loaded.definition == {"a": 2}  # a draft changes (its hash too, once edited): never from a copy


def test_deferring_a_column_that_is_not_there_or_a_key_is_refused():
    from assist_portal.sqlcache import CompiledModelQuery

    with pytest.raises(ValueError, match="cannot defer"):
        CompiledModelQuery(Notification, lambda pk: Notification.objects.filter(pk=pk), related=("definition",),
                           defer=("definition__no_such_column",))
    with pytest.raises(ValueError, match="primary key"):
        CompiledModelQuery(Notification, lambda pk: Notification.objects.filter(pk=pk), related=("definition",),
                           defer=("definition__id",))


def test_a_compiled_update_takes_the_key_of_a_related_object_saved_after_it_was_assigned(launched, hospital):  # noqa: F811
    """As Django's save: `row.fk = obj; obj.save(); row.save(update_fields=["fk"])` stores obj's key (not the NULL
    it had when assigned)."""
    from assist_portal.accounts.models import User

    row = Notification.objects.get(pk=launched.pk)
    user = User(username="later_saved", role="clerk", hospital=hospital)
    row.updated_by = user
    user.save()
    row.save(update_fields=["updated_by"])
    assert Notification.objects.get(pk=launched.pk).updated_by_id == user.pk


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="data-modifying WITH statements: PostgreSQL")
def test_insert_from_writes_the_row_save_would_and_refuses_text_too_long(hospital):
    """`insert_from`: the audit row an INSERT … SELECT writes equals the one `save()` writes, once per source row
    and not at all for none; a value longer than its column is refused as the ORM refuses it, never cut."""
    from django.db import DataError, transaction

    from assist_portal.audit.models import AuditEvent
    from assist_portal.audit.services import audit_event
    from assist_portal.sqlcache import insert_from

    def fields(event):
        return {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields if f.attname != "id"}

    saved = audit_event("delivery.accepted", hospital_code=hospital.code, object_type="delivery.delivery",
                        object_id="7", attempt=1, http_status=200, status="accepted")
    event = audit_event("delivery.accepted", hospital_code=hospital.code, object_type="delivery.delivery",
                        object_id="8", attempt=1, http_status=200, status="accepted")
    event.at = saved.at
    saved.save()
    expected = 0
    for source, rows in (("(SELECT 1 WHERE false) s", 0), ("(SELECT 1) s", 1), ("(VALUES (1), (2)) v(n)", 2)):
        sql, params = insert_from(event, source)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        expected += rows
        assert AuditEvent.objects.filter(object_id="8").count() == expected
    copies = list(AuditEvent.objects.filter(object_id="8"))
    assert len(copies) == 3
    for copy in copies:
        assert {**fields(copy), "object_id": "7"} == fields(AuditEvent.objects.get(object_id="7"))

    too_long = audit_event("delivery.accepted", hospital_code="H" * 21, object_type="delivery.delivery",
                           object_id="9")
    sql, params = insert_from(too_long, "(SELECT 1) s")
    with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert not AuditEvent.objects.filter(object_id="9").exists()
