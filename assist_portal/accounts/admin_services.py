"""Account administration: who may create, reset and unlock whose account, enforced here (not only in views).

- A hospital administrator manages the physicians and clerks of its own hospital (`/hospital/staff/`).
- A central admin (`/central/users/`, and `manage.py user_create`, acting as the data centre) manages hospital
  administrators and central admins only: it can never create, reset or unlock an account that reads patient
  values, so it can never learn a one-time password that leads to one.

A hospital administrator learns the one-time initial password of the staff it creates (and hands it over in
the hospital). A central admin never learns one: the one-time password of a hospital administrator it creates or
resets goes by e-mail to the holder only (accounts.notices.credential_notice), the address may not be a central
admin's, and the hospital's other administrators are told. So no central admin can sign in as a hospital
administrator and, through it, create or hold an account that reads patient values.

The administrator only ever learns a one-time initial password. The second factor is enrolled by the account
holder at first sign-in (accounts.services.enrol_*), and the one-time password must be changed right after it,
so the administrator never holds both factors of someone else's account. The holder is told by e-mail when
their second factor is enrolled or reset (accounts.notices).
"""
from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

import mapping
from assist_portal.audit.services import audit_record

from . import throttle
from .models import PATIENT_READING_ROLES, Hospital, SignInThrottle, User
from .notices import NoticeNotSent, account_notice, credential_notice, hospital_admins_notice

#: Who manages whom. `None` is the data-centre operator (`manage.py`), with a central admin's rights.
MANAGES: dict[str | None, frozenset[str]] = {
    None: frozenset({User.Role.HOSPITAL_ADMIN, User.Role.CENTRAL_ADMIN}),
    User.Role.CENTRAL_ADMIN: frozenset({User.Role.HOSPITAL_ADMIN, User.Role.CENTRAL_ADMIN}),
    User.Role.HOSPITAL_ADMIN: frozenset(PATIENT_READING_ROLES),
}
CENTRAL_REFUSED = ("中央管理者は医師・事務のアカウントを作成・リセット・ロック解除できません。"
                   "医療機関の管理者に依頼してください。")
HOSPITAL_REFUSED = "医療機関の管理者が管理できるのは、自院の医師・事務のアカウントだけです。"


class AccountError(Exception):
    pass


def credential_by_mail(by) -> bool:
    """True when the one-time password must go to the holder by e-mail instead of being shown to `by` (a central
    admin; the data-centre command acts on the operator's own terminal and prints it)."""
    return by is not None and by.role == User.Role.CENTRAL_ADMIN


MAIL_FAILED = ("初期パスワードを本人にメールで送れなかったため、{what}を取り消しました。"
               "メールアドレスとメール送信の設定を確認してください。")


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def managed_roles(by) -> frozenset[str]:
    """The roles `by` may create, reset and unlock (empty for physicians and clerks)."""
    return MANAGES.get(None if by is None else by.role, frozenset())


def may_manage(by, *, role: str, hospital_id: int | None) -> bool:
    if role not in managed_roles(by):
        return False
    if by is not None and by.role == User.Role.HOSPITAL_ADMIN:
        return by.hospital_id is not None and hospital_id == by.hospital_id
    return True


def _require_may_manage(by, *, role: str, hospital_id: int | None, action: str, target=None, request=None):
    if may_manage(by, role=role, hospital_id=hospital_id):
        return
    audit_record("user.denied", request=request, user=by, obj=target, attempted=action, role=role)
    raise AccountError(HOSPITAL_REFUSED if by is not None and by.role == User.Role.HOSPITAL_ADMIN
                       else CENTRAL_REFUSED)


def user_create(*, username: str, role: str, email: str, hospital=None, display_name: str = "",
                password: str | None = None, by=None, request=None) -> tuple[User, str]:
    """An individual account (no shared accounts) without any second factor; returns the one-time password.

    `by` must be allowed to manage `role` (MANAGES); a hospital administrator's new staff always belong to its
    own hospital. The holder registers the authenticator app at first sign-in and must then replace the password.
    """
    username = (username or "").strip()
    email = (email or "").strip()
    if not username or len(username) > 150:
        raise AccountError("ユーザー名を入力してください（150文字以内）。")
    if role not in User.Role.values:
        raise AccountError("役割が正しくありません。")
    if by is not None and by.role == User.Role.HOSPITAL_ADMIN:
        hospital = by.hospital
    if role == User.Role.CENTRAL_ADMIN:
        hospital = None
    elif hospital is None:
        raise AccountError("医療機関の管理者・医師・事務には所属医療機関が必要です。")
    _require_may_manage(by, role=role, hospital_id=getattr(hospital, "pk", None), action="create", request=request)
    if hospital is not None and not hospital.is_active:
        raise AccountError("利用を停止した医療機関にはアカウントを作成できません。")
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError("本人のメールアドレスを入力してください（認証アプリの登録・リセットを本人に通知します）。")
    if User.objects.filter(username=username).exists():
        raise AccountError("このユーザー名はすでに使われています。")
    if role != User.Role.CENTRAL_ADMIN and User.objects.filter(role=User.Role.CENTRAL_ADMIN,
                                                               email__iexact=email).exists():
        raise AccountError("中央管理者のメールアドレスは、医療機関のアカウントには使えません。本人のアドレスを入力してください。")
    password = password or one_time_password()
    mailed = credential_by_mail(by)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, role=role,
                                            display_name=display_name, email=email, hospital=hospital,
                                            must_change_password=True)
            audit_record("user.create", request=request, user=by, obj=user, role=role,
                         hospital_code=hospital.code if hospital else "", credential="mail" if mailed else "shown")
            if mailed:
                credential_notice(user, password, "created", by=by, request=request)
    except NoticeNotSent:
        raise AccountError(MAIL_FAILED.format(what="アカウントの作成"))
    if mailed and role == User.Role.HOSPITAL_ADMIN:
        hospital_admins_notice(user, "created", by=by, request=request)
    return user, None if mailed else password


def user_reset(user: User, *, by=None, request=None) -> str | None:
    """Lost phone: remove every OTP device, set a new one-time password (returned, shown once — or, when a central
    admin resets, e-mailed to the holder only and None returned), force a change.

    The holder re-enrols at the next sign-in and is told by e-mail. The new password also ends the account's
    open sessions (Django checks the password hash stored in each session).
    """
    if by is not None and by.pk == user.pk:
        raise AccountError("自分自身のアカウントはリセットできません。別の管理者に依頼してください。")
    _require_may_manage(by, role=user.role, hospital_id=user.hospital_id, action="reset", target=user,
                        request=request)
    password = one_time_password()
    mailed = credential_by_mail(by)
    if mailed and not user.email:
        raise AccountError("この利用者にはメールアドレスがないため、初期パスワードを送れません。データセンターの運用担当に依頼してください。")
    try:
        with transaction.atomic():
            removed = 0
            for device in list(devices_for_user(user, confirmed=None)):
                device.delete()
                removed += 1
            user.set_password(password)
            user.must_change_password = True
            user.save(update_fields=["password", "must_change_password"])
            throttle.account_unlock(user)
            audit_record("user.reset", request=request, user=by, obj=user, devices_removed=removed,
                         credential="mail" if mailed else "shown")
            if mailed:
                credential_notice(user, password, "reset", by=by, request=request)
    except NoticeNotSent:
        raise AccountError(MAIL_FAILED.format(what="リセット"))
    if mailed:
        if user.role == User.Role.HOSPITAL_ADMIN:
            hospital_admins_notice(user, "reset", by=by, request=request)
        return None
    account_notice(user, "reset", by=by, request=request)
    return password


def user_unlock(user: User, *, by=None, request=None) -> None:
    _require_may_manage(by, role=user.role, hospital_id=user.hospital_id, action="unlock", target=user,
                        request=request)
    cleared = throttle.account_unlock(user)
    audit_record("user.unlock", request=request, user=by, obj=user, sources=cleared)


def managed_user(by, pk) -> User | None:
    """The account `pk` if `by` may manage it, else None (the view answers 404: no hint that it exists)."""
    user = User.objects.filter(pk=pk).select_related("hospital").first() if isinstance(pk, int) else None
    if user is None or not may_manage(by, role=user.role, hospital_id=user.hospital_id):
        return None
    return user


def users_for_admin(by):
    """The accounts `by` manages, with whether the authenticator is registered (`has_device`) and whether sign-in
    is locked from some address (`is_locked`)."""
    confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    locked = SignInThrottle.objects.filter(user=OuterRef("pk"), locked_until__gt=timezone.now())
    qs = User.objects.filter(role__in=managed_roles(by))
    if by is not None and by.role == User.Role.HOSPITAL_ADMIN:
        qs = qs.filter(hospital_id=by.hospital_id)
    return (qs.select_related("hospital").annotate(has_device=Exists(confirmed), is_locked=Exists(locked))
            .order_by("hospital__code", "username"))


# --- Hospitals (tenants): onboarded and deactivated by central admins -------------------------------------------

HOSPITAL_FIELDS = {  # field: (label, max length, required)
    "name": ("名称", 200, True),
    "address": ("所在地", 300, True),
    "phone": ("電話番号", 30, True),
    "health_centre_code": ("管轄保健所コード", 20, False),
    "health_centre_name": ("管轄保健所", 100, False),
    "contact_email": ("連絡先メールアドレス", 254, False),  # told when a delivery needs people (issue 8)
}


def _require_central(by, *, action: str, request=None, hospital=None) -> None:
    if by is None or by.role == User.Role.CENTRAL_ADMIN:
        return
    audit_record("user.denied", request=request, user=by, obj=hospital, attempted=action)
    raise AccountError("医療機関の登録・変更・利用停止は中央管理者が行います。")


def _hospital_values(values: dict) -> dict[str, str]:
    out = {}
    for field, (label, limit, required) in HOSPITAL_FIELDS.items():
        value = values.get(field, "")
        value = value.strip() if isinstance(value, str) else ""
        if any(ord(ch) < 32 for ch in value) or len(value) > limit:
            raise AccountError(f"{label}は{limit}文字以内で、改行や制御文字を含めずに入力してください。")
        if required and not value:
            raise AccountError(f"{label}を入力してください。")
        if field == "contact_email" and value:
            from django.core.exceptions import ValidationError
            from django.core.validators import validate_email

            try:
                validate_email(value)
            except ValidationError:
                raise AccountError("連絡先メールアドレスの形式が正しくありません（例: kansen@example.jp）。") from None
        out[field] = value
    return out


def hospital_create(*, code: str, by=None, request=None, **values) -> Hospital:
    """A new tenant with its facility master and health centre. It has no key and no accounts yet: next, a
    connector key (accounts.connector_keys) and its administrator (user_create role=hospital_admin)."""
    _require_central(by, action="hospital_create", request=request)
    code = (code or "").strip()
    if not code.isascii() or not code.replace("-", "").replace("_", "").isalnum() or len(code) > 20:
        raise AccountError("医療機関コードは半角英数字（20文字以内）で入力してください。")
    fields = _hospital_values(values)
    if Hospital.objects.filter(code=code).exists():
        raise AccountError("この医療機関コードはすでに登録されています。")
    with transaction.atomic():
        hospital = Hospital.objects.create(code=code, **fields)
        audit_record("hospital.create", request=request, user=by, hospital_code=code, obj=hospital)
    return hospital


def hospital_update(hospital: Hospital, *, by=None, request=None, **values) -> Hospital:
    """Edit the facility master and health centre (the code is the tenant's identity and never changes)."""
    _require_central(by, action="hospital_edit", request=request, hospital=hospital)
    fields = _hospital_values(values)
    changed = sorted(f for f, v in fields.items() if getattr(hospital, f) != v)
    for field, value in fields.items():
        setattr(hospital, field, value)
    hospital.save(update_fields=list(fields))
    audit_record("hospital.edit", request=request, user=by, hospital_code=hospital.code, obj=hospital,
                 fields=changed)
    return hospital


def hospital_set_active(hospital: Hospital, *, active: bool, by=None, request=None) -> Hospital:
    """Deactivate: at once its staff and administrators open nothing (open sessions included) and its connector
    keys are refused; notifications already confirmed are still delivered. Reactivate: all of it works again."""
    _require_central(by, action="hospital_deactivate" if not active else "hospital_reactivate", request=request,
                     hospital=hospital)
    updated = Hospital.objects.filter(pk=hospital.pk, is_active=not active).update(is_active=active)
    hospital.is_active = active
    if updated:
        audit_record("hospital.reactivate" if active else "hospital.deactivate", request=request, user=by,
                     hospital_code=hospital.code, obj=hospital)
    return hospital


def _check_csv_profile(profile: dict, codes) -> None:
    """The shapes `mapping.csvdwh` reads, then a dry run over one synthetic row: a profile that would fail on the
    hospital's next push is refused now, with a message, instead."""
    columns = profile.get("columns")
    if not isinstance(columns, dict):
        raise ValueError("CSVプロファイルの columns は {\"項目ID\": 列の指定, ...} の形にしてください。")
    names: list[str] = []
    for item, spec in columns.items():
        if isinstance(spec, str):
            names.append(spec)
            continue
        if not isinstance(spec, dict):
            raise ValueError(f"{item[:40]}: 列の指定は列名（文字列）か {{\"column\": \"列名\"}} にしてください。")
        if "column" in spec and not isinstance(spec["column"], str):
            raise ValueError(f"{item[:40]}: column は列名（文字列）にしてください。")
        if "columns" in spec and not (isinstance(spec["columns"], list)
                                      and all(isinstance(c, str) for c in spec["columns"])):
            raise ValueError(f"{item[:40]}: columns は列名の配列にしてください。")
        for key, kind in (("map", dict), ("type", str), ("split", str)):
            if key in spec and not isinstance(spec[key], kind):
                raise ValueError(f"{item[:40]}: {key} の形が正しくありません。")
        names += [spec.get("column")] if isinstance(spec.get("column"), str) else []
        names += spec.get("columns", [])
    for key in ("patient_id", "encoding"):
        if key in profile and not isinstance(profile[key], str):
            raise ValueError(f"CSVプロファイルの {key} は文字列にしてください。")
    if "delimiter" in profile and not (isinstance(profile["delimiter"], str) and len(profile["delimiter"]) == 1):
        raise ValueError("CSVプロファイルの delimiter は1文字にしてください。")
    tests = profile.get("tests")
    if tests is not None:
        if not isinstance(tests, dict) or not isinstance(tests.get("columns", {}), dict) or \
                not all(isinstance(v, str) for v in tests.get("columns", {}).values()):
            raise ValueError("CSVプロファイルの tests は {\"columns\": {\"method\": \"列名\", ...}} の形にしてください。")
        slots = tests.get("slots", 4)
        if not isinstance(slots, int) or isinstance(slots, bool) or not 1 <= slots <= 4:
            raise ValueError("CSVプロファイルの tests.slots は1〜4の整数にしてください。")
        if tests.get("layout", "wide") not in ("wide", "long"):
            raise ValueError("CSVプロファイルの tests.layout は wide か long にしてください。")
        names += [v.replace("{n}", "1") for v in tests.get("columns", {}).values()]
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=profile.get("delimiter", ","))
    pid = profile.get("patient_id") or "patient_id"
    writer.writerow([pid, *names])
    writer.writerow(["P1", *["1" for _ in names]])
    try:
        mapping.formats.extract("csv", buffer.getvalue().encode("utf-8"), codes, profile)
    except Exception as exc:  # the dry run must not fail: a profile that makes it fail is refused
        raise ValueError(f"CSVプロファイルを適用できません（{type(exc).__name__}）。列の指定を確認してください。")


def hospital_raw_push_set(hospital: Hospital, *, enabled: bool, by, request=None) -> Hospital:
    """The hospital administrator's switch: accept raw EMR extracts (not only the notification items) from this
    hospital's connector. Off by default; audited both ways."""
    if by is None or not (by.role == User.Role.HOSPITAL_ADMIN and by.hospital_id == hospital.pk
                          and by.hospital_is_active):
        audit_record("user.denied", request=request, user=by, obj=hospital, attempted="raw_push")
        raise AccountError("この設定を変更できるのは、その医療機関の管理者だけです。")
    Hospital.objects.filter(pk=hospital.pk).update(raw_push_enabled=enabled)
    hospital.raw_push_enabled = enabled
    audit_record("hospital.raw_push", request=request, user=by, hospital_code=hospital.code, obj=hospital,
                 enabled=enabled)
    return hospital


def hospital_mapping_update(hospital: Hospital, *, local_codes, csv_profile, user, request=None) -> Hospital:
    """A central admin's edit of a hospital's mapping tables (local lab/specimen codes, DWH column profile);
    used from the next extract the hospital pushes. ValueError (Japanese) when a table is not usable."""
    if not isinstance(local_codes, dict) or not all(isinstance(local_codes.get(k, {}), dict)
                                                    for k in ("lab", "specimen")):
        raise ValueError("院内コード表は {\"lab\": {...}, \"specimen\": {...}} の形にしてください。")
    if not isinstance(csv_profile, dict):
        raise ValueError("CSVプロファイルはJSONオブジェクトで入力してください。")
    for section, key in (("lab", "method"), ("specimen", "specimen")):
        for code, entry in local_codes.get(section, {}).items():
            if not isinstance(entry, dict):
                raise ValueError(f"院内コード {code[:20]} は {{\"name\": \"名称\", \"{key}\": \"コード\"}} の形にしてください。")
    codes = mapping.load_local_codes(local_codes)
    if codes.errors:
        raise ValueError(codes.errors[0])
    if csv_profile:
        _, problem = mapping.load_profile(csv_profile)
        if problem:
            raise ValueError(problem)
        _check_csv_profile(csv_profile, codes)
    hospital.local_codes = local_codes
    hospital.csv_profile = csv_profile
    hospital.save(update_fields=["local_codes", "csv_profile"])
    audit_record("hospital.mapping_edit", request=request, user=user, hospital_code=hospital.code, obj=hospital)
    return hospital
