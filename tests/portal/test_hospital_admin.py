"""Hospitals run their own accounts: a hospital administrator manages its own physicians and clerks; central admins
manage administrators only and can never create, reset or unlock an account that reads patient values; the holder
is e-mailed when the second factor is enrolled or reset; everything audited."""
import pytest
from django.core import mail
from django.db import IntegrityError
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.accounts.admin_services import AccountError, user_create, user_reset, user_unlock
from assist_portal.accounts.models import User
from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def create(client, url, **fields):
    data = {"username": "someone", "display_name": "誰か", "email": "someone@example.jp", **fields}
    return client.post(reverse(url), data)


def one_time_password(response) -> str:
    return response.content.decode().split('id="initial-password">', 1)[1].split("</code>", 1)[0]


def mailed_password(message) -> str:
    return message.body.split("初期パスワード（一度だけ使えます）: ", 1)[1].split("\n", 1)[0]


def test_the_central_admin_path_to_patient_values_is_closed(client, central_admin, hospital_admin, hospital,
                                                            physician, login, published, push):
    """The indirect path: a central admin creates (or resets) a hospital administrator, signs in with its one-time
    password, and creates a physician who reads patient values. Every step that would hand the central admin a
    credential shows none: the password goes to the holder's mailbox only, and the hospital's administrators hear
    of it."""
    from django.test import Client

    User.objects.filter(pk=central_admin.pk).update(email="central@example.jp")
    User.objects.filter(pk=hospital_admin.pk).update(email="hadmin@hospital.example")
    central_admin.refresh_from_db()
    hospital_admin.refresh_from_db()
    published("2021-03")
    assert push(Client(), "1100000002").status_code == 201
    login(client, central_admin)
    mail.outbox.clear()
    created = create(client, "central:users", role="hospital_admin", hospital=hospital.pk, username="takeover",
                     email="takeover@example.jp")
    reset = client.post(reverse("central:users"), {"reset": hospital_admin.pk})
    for response in (created, reset):
        html = response.content.decode()
        assert response.status_code == 200 and 'id="initial-password"' not in html, html[:2000]
    # What the central admin could try as the password: nothing it saw signs in.
    hospital_admin.refresh_from_db()
    takeover = User.objects.get(username="takeover")
    for page in (created, reset):
        for token in page.content.decode().split():
            assert not takeover.check_password(token) and not hospital_admin.check_password(token)
    # Its own address cannot be used for the new administrator.
    own = create(client, "central:users", role="hospital_admin", hospital=hospital.pk, username="mine",
                 email="Central@example.jp")
    assert own.status_code == 400 and not User.objects.filter(username="mine").exists()
    # The holders got their passwords; the hospital's administrator heard of the new account.
    recipients = sorted(addr for m in mail.outbox for addr in m.to)
    assert "takeover@example.jp" in recipients and hospital_admin.email in recipients
    assert any("takeover" in m.body and "依頼したものでない場合" in m.body for m in mail.outbox)
    # And the central admin still reads no notification.
    assert client.get(reverse("notifications:list")).status_code == 403


def test_a_reset_by_a_central_admin_that_cannot_be_mailed_changes_nothing(client, central_admin, hospital_admin,
                                                                          login, settings):
    User.objects.filter(pk=hospital_admin.pk).update(email="hadmin@hospital.example")
    settings.EMAIL_BACKEND = "tests.portal.test_hospital_admin.FailingBackend"
    login(client, central_admin)
    response = client.post(reverse("central:users"), {"reset": hospital_admin.pk})
    assert response.status_code == 400 and "メールで送れなかった" in response.content.decode()
    hospital_admin.refresh_from_db()
    assert hospital_admin.check_password(PASSWORD) and not hospital_admin.must_change_password
    assert TOTPDevice.objects.filter(user=hospital_admin, confirmed=True).exists()
    created = create(client, "central:users", role="hospital_admin", hospital=hospital_admin.hospital_id)
    assert created.status_code == 400 and not User.objects.filter(username="someone").exists()


@pytest.mark.parametrize("role", ["physician", "clerk"])
def test_central_admin_cannot_create_an_account_that_reads_patient_values(client, central_admin, hospital, login,
                                                                          role):
    login(client, central_admin)
    response = create(client, "central:users", role=role, hospital=hospital.pk)
    assert response.status_code == 400 and "医療機関の管理者に依頼" in response.content.decode()
    assert 'id="initial-password"' not in response.content.decode()
    assert not User.objects.filter(username="someone").exists()
    denied = AuditEvent.objects.get(action="user.denied")
    assert denied.actor_username == "central" and denied.detail == {"attempted": "create", "role": role}
    # The page does not even offer the role.
    assert f'value="{role}"' not in client.get(reverse("central:users")).content.decode()
    # Enforced in the service, not only in the view.
    with pytest.raises(AccountError):
        user_create(username="svc", role=role, email="s@example.jp", hospital=hospital, by=central_admin)


def test_central_admin_cannot_reset_or_unlock_a_physician(client, central_admin, physician, login):
    device = TOTPDevice.objects.get(user=physician)
    login(client, central_admin)
    assert client.post(reverse("central:users"), {"reset": physician.pk}).status_code == 404
    assert client.post(reverse("central:users"), {"unlock": physician.pk}).status_code == 404
    assert physician.username not in client.get(reverse("central:users")).content.decode()
    for action in (user_reset, user_unlock):
        with pytest.raises(AccountError):
            action(physician, by=central_admin)
    physician.refresh_from_db()
    assert physician.check_password(PASSWORD) and not physician.must_change_password
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    assert sorted(AuditEvent.objects.filter(action="user.denied").values_list("detail__attempted", flat=True)) == \
        ["reset", "unlock"]


def test_the_data_centre_command_cannot_create_a_physician(hospital):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("user_create", "cmd_doctor", role="physician", hospital="H0001", email="d@example.jp")
    with pytest.raises(AccountError):  # the command acts with a central admin's rights (by=None)
        user_create(username="cmd_doctor", role="physician", email="d@example.jp", hospital=hospital)
    assert not User.objects.filter(username="cmd_doctor").exists()


def test_a_central_admin_never_belongs_to_a_hospital(central_admin, hospital):
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=central_admin.pk).update(hospital=hospital)


def test_central_admin_creates_a_hospital_administrator(client, central_admin, hospital, login):
    login(client, central_admin)
    missing = create(client, "central:users", role="hospital_admin")
    assert missing.status_code == 400 and "所属医療機関が必要" in missing.content.decode()
    bad_id = create(client, "central:users", role="hospital_admin", hospital="²")
    assert bad_id.status_code == 400 and "所属医療機関が正しくありません" in bad_id.content.decode()
    response = create(client, "central:users", role="hospital_admin", hospital=hospital.pk)
    html = response.content.decode()
    # The one-time password goes to the holder by e-mail only; the central admin never sees it.
    assert response.status_code == 200 and 'id="initial-password"' not in html and 'id="credential-mailed"' in html
    admin = User.objects.get(username="someone")
    assert admin.role == "hospital_admin" and admin.hospital == hospital and admin.must_change_password
    assert not TOTPDevice.objects.filter(user=admin).exists()
    assert [m.to for m in mail.outbox] == [["someone@example.jp"]]
    password = mailed_password(mail.outbox[0])
    assert password not in html and admin.check_password(password)
    event = AuditEvent.objects.get(action="user.create")
    assert event.actor_username == "central" and event.hospital_code == "H0001"
    assert event.detail["credential"] == "mail" and password not in str(list(AuditEvent.objects.values("detail")))


def test_hospital_admin_manages_only_its_own_staff(client, hospital_admin, other_hospital, make_user, login):
    foreign = make_user("dr_other", "physician", other_hospital)
    login(client, hospital_admin)
    # A hospital field in the post is ignored: new staff always belong to the administrator's hospital.
    response = create(client, "hospitaladmin:staff", role="clerk", hospital=other_hospital.pk)
    assert response.status_code == 200
    assert User.objects.get(username="someone").hospital_id == hospital_admin.hospital_id
    for role in ("hospital_admin", "central_admin"):
        refused = create(client, "hospitaladmin:staff", role=role, username=f"x_{role}")
        assert refused.status_code == 400 and not User.objects.filter(username=f"x_{role}").exists()
    # Another hospital's staff: not listed, and 404 (no hint that the account exists).
    assert "dr_other" not in client.get(reverse("hospitaladmin:staff")).content.decode()
    assert client.post(reverse("hospitaladmin:staff"), {"reset": foreign.pk}).status_code == 404
    assert client.post(reverse("hospitaladmin:staff"), {"unlock": foreign.pk}).status_code == 404
    with pytest.raises(AccountError):
        user_reset(foreign, by=hospital_admin)
    foreign.refresh_from_db()
    assert foreign.check_password(PASSWORD)


def test_hospital_admin_reads_no_patient_values(client, hospital_admin, hospital, physician, published, push, login):
    from assist_portal.notifications import selectors, services
    from assist_portal.notifications.models import Extract

    published("2021-03")
    assert push(client, "1100000002").status_code == 201
    notification = services.notification_open_from_extract(Extract.objects.get(), physician)
    login(client, hospital_admin)
    for url in (reverse("notifications:list"), reverse("notifications:form", args=[notification.uuid]),
                reverse("notifications:print", args=[notification.uuid]),
                reverse("notifications:status-json", args=[notification.uuid])):
        assert client.get(url).status_code == 403, url
    assert not selectors.notifications_for_user(hospital_admin).exists()
    assert not hospital_admin.is_hospital_staff
    # Signing in lands on the staff page.
    client.logout()
    device = TOTPDevice.objects.get(user=hospital_admin)
    response = client.post(reverse("accounts:login"), {"username": "hadmin", "password": PASSWORD,
                                                       "otp_token": current_totp(device)})
    assert response["Location"] == reverse("hospitaladmin:staff")


def test_the_holder_is_emailed_when_the_second_factor_is_enrolled_or_reset(client, hospital_admin, login):
    login(client, hospital_admin)
    password = one_time_password(create(client, "hospitaladmin:staff", role="physician"))
    client.logout()
    assert mail.outbox == []
    client.post(reverse("accounts:login"), {"username": "someone", "password": password, "otp_token": ""})
    device = TOTPDevice.objects.get(user__username="someone")
    assert client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)}).status_code == 302
    assert len(mail.outbox) == 1
    enrolled = mail.outbox[0]
    assert enrolled.to == ["someone@example.jp"] and "認証アプリが登録されました" in enrolled.subject
    assert "someone" in enrolled.body and password not in enrolled.body and device.key not in enrolled.body
    user = User.objects.get(username="someone")
    login(client, hospital_admin)
    new_password = one_time_password(client.post(reverse("hospitaladmin:staff"), {"reset": user.pk}))
    assert len(mail.outbox) == 2
    reset = mail.outbox[1]
    assert reset.to == ["someone@example.jp"] and "リセット" in reset.subject and "hadmin" in reset.body
    assert new_password not in reset.body
    notices = AuditEvent.objects.filter(action="user.notice", object_id=str(user.pk)).order_by("at", "id")
    assert [(e.detail["kind"], e.detail["sent"]) for e in notices] == [("enrolled", True), ("reset", True)]


def test_a_notice_that_cannot_be_sent_does_not_undo_the_reset(hospital_admin, physician, settings):
    settings.EMAIL_BACKEND = "tests.portal.test_hospital_admin.FailingBackend"
    physician.email = "dr@example.jp"
    physician.save()
    password = user_reset(physician, by=hospital_admin)
    physician.refresh_from_db()
    assert physician.check_password(password)
    assert AuditEvent.objects.get(action="user.notice").detail == {"kind": "reset", "sent": False,
                                                                   "has_address": True}


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("smtp down")
