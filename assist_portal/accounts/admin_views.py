"""The accounts page an administrator works on: central admins at /central/users/ (hospital administrators and
central admins), hospital administrators at /hospital/staff/ (their own physicians and clerks). One view body
for both; what each may do is decided in accounts.admin_services, not here."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from assist_portal.inputs import ascii_id, clean_text

from .admin_services import (
    AccountError,
    managed_roles,
    managed_user,
    user_create,
    user_reset,
    user_unlock,
    users_for_admin,
)
from .models import Hospital, User


def account_admin(request, *, template: str, page: str):
    """GET: the accounts `request.user` manages. POST: create (one-time password shown once), `reset=<id>` (lost
    phone: new one-time password, re-enrolment) or `unlock=<id>`. An id outside the administrator's remit is a
    404, like one that does not exist."""
    by = request.user
    created, error = None, ""
    if request.method == "POST" and ("unlock" in request.POST or "reset" in request.POST):
        action = "unlock" if "unlock" in request.POST else "reset"
        target = managed_user(by, ascii_id(request.POST.get(action)))
        if target is None:
            raise Http404("利用者が見つかりません。")
        try:
            if action == "unlock":
                user_unlock(target, by=by, request=request)
                messages.success(request, f"{target.username} のロックを解除しました。")
                return redirect(page)
            created = {"user": target, "password": user_reset(target, by=by, request=request), "reset": True}
        except AccountError as exc:
            error = str(exc)
    elif request.method == "POST":
        hospital = None
        raw_hospital = request.POST.get("hospital", "")
        if raw_hospital:
            hospital_id = ascii_id(raw_hospital)
            hospital = Hospital.objects.filter(pk=hospital_id).first() if hospital_id is not None else None
        fields = {name: clean_text(request.POST.get(name, ""), limit)
                  for name, limit in (("username", 150), ("display_name", 100), ("email", 254), ("role", 20))}
        try:
            if raw_hospital and hospital is None:
                raise AccountError("所属医療機関が正しくありません。")
            if any(value is None for value in fields.values()):
                raise AccountError("入力に使えない文字が含まれているか、長すぎます。")
            user, password = user_create(username=fields["username"], role=fields["role"], email=fields["email"],
                                         hospital=hospital, display_name=fields["display_name"].strip(), by=by,
                                         request=request)
        except AccountError as exc:
            error = str(exc)
        else:
            created = {"user": user, "password": password, "reset": False}
    roles = [(value, label) for value, label in User.Role.choices if value in managed_roles(by)]
    hospitals = Hospital.objects.filter(is_active=True).order_by("code") if not by.is_hospital_admin else None
    return render(request, template, {
        "users": users_for_admin(by), "roles": roles, "hospitals": hospitals, "created": created, "error": error,
        "now": timezone.now()}, status=400 if error else 200)


def connector_keys_post(request, hospital) -> tuple[dict | None, str]:
    """POST of the keys card (central hospital page, hospital administrator's keys page): `create` (name),
    `rotate=<id>` (overlap_hours), `revoke=<id>`. Returns (the key to show once, error message)."""
    from .connector_keys import ConnectorKeyError, connector_key_create, connector_key_revoke, connector_key_rotate

    by = request.user
    try:
        if "rotate" in request.POST or "revoke" in request.POST:
            action = "rotate" if "rotate" in request.POST else "revoke"
            key_id = ascii_id(request.POST.get(action))
            key = hospital.connector_keys.filter(pk=key_id).first() if key_id is not None else None
            if key is None:
                raise Http404("キーが見つかりません。")
            if action == "revoke":
                connector_key_revoke(key, by=by, request=request)
                messages.success(request, f"キー「{key.name}」（{key.prefix}…）を失効させました。")
                return None, ""
            hours = request.POST.get("overlap_hours", "")
            try:
                overlap = float(hours) if hours.strip() else None
            except ValueError:
                raise ConnectorKeyError("重複期間は0〜720時間で指定してください。")
            if overlap is not None and overlap != overlap:  # NaN
                raise ConnectorKeyError("重複期間は0〜720時間で指定してください。")
            row, secret = connector_key_rotate(key, overlap_hours=overlap, by=by, request=request)
            return {"key": row, "secret": secret, "rotated": key}, ""
        name = clean_text(request.POST.get("name", ""), 100)
        row, secret = connector_key_create(hospital, name=name or "", by=by, request=request)
        return {"key": row, "secret": secret}, ""
    except ConnectorKeyError as exc:
        return None, str(exc)
