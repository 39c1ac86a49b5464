"""Central admin: onboarding hospitals (facility master, health centre, form assignment), deactivating them and
their connector keys. No patient data here."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from assist_portal.accounts.admin_services import (
    HOSPITAL_FIELDS,
    AccountError,
    hospital_create,
    hospital_set_active,
    hospital_update,
)
from assist_portal.accounts.admin_views import connector_keys_post
from assist_portal.accounts.connector_keys import keys_for_hospital
from assist_portal.accounts.decorators import admin_required
from assist_portal.accounts.models import Hospital
from assist_portal.formdefs.models import FormAssignment, FormDefinition
from assist_portal.inputs import ascii_id, clean_text

from . import services


def _hospital(pk) -> Hospital:
    return get_object_or_404(Hospital, pk=pk)


def _fields(request) -> dict[str, str]:
    return {field: clean_text(request.POST.get(field, ""), 1000) or "" for field in HOSPITAL_FIELDS}


@admin_required
@require_http_methods(["GET", "POST"])
def hospital_new(request):
    """Onboarding, step 1: the hospital's facility master and health centre."""
    error = ""
    if request.method == "POST":
        try:
            hospital = hospital_create(code=clean_text(request.POST.get("code", ""), 20) or "", by=request.user,
                                       request=request, **_fields(request))
        except AccountError as exc:
            error = str(exc)
        else:
            messages.success(request, f"{hospital} を登録しました。続けて連携用APIキーと医療機関の管理者を作成してください。")
            return redirect("central:hospital-detail", pk=hospital.pk)
    return render(request, "central/hospital_form.html", {"hospital": None, "fields": HOSPITAL_FIELDS,
                                                          "post": request.POST, "error": error},
                  status=400 if error else 200)


def _detail(request, hospital, *, status=200, **extra):
    return render(request, "central/hospital_detail.html", {
        "hospital": hospital, "fields": HOSPITAL_FIELDS, "keys": keys_for_hospital(hospital), "now": timezone.now(),
        "assignments": FormAssignment.objects.filter(hospital=hospital).select_related("definition")[:20],
        "definitions": FormDefinition.objects.filter(status=FormDefinition.Status.PUBLISHED).order_by("-id")[:50],
        "admins": hospital.users.filter(role="hospital_admin").order_by("username"), **extra}, status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def hospital_detail(request, pk):
    """One hospital: facility master and health centre (edit), state, form assignment, connector keys."""
    hospital = _hospital(pk)
    if request.method == "POST":
        try:
            hospital_update(hospital, by=request.user, request=request, **_fields(request))
        except AccountError as exc:
            hospital.refresh_from_db()
            return _detail(request, hospital, status=400, error=str(exc))
        messages.success(request, "施設情報を保存しました。")
        return redirect("central:hospital-detail", pk=hospital.pk)
    return _detail(request, hospital)


@admin_required
@require_POST
def hospital_active(request, pk):
    """Deactivate (its staff and keys stop at once) or reactivate."""
    hospital = _hospital(pk)
    active = request.POST.get("active")
    if active not in ("0", "1"):
        return _detail(request, hospital, status=400, error="操作が正しくありません。")
    hospital_set_active(hospital, active=active == "1", by=request.user, request=request)
    messages.success(request, f"{hospital} の利用を{'再開' if active == '1' else '停止'}しました。")
    return redirect("central:hospital-detail", pk=hospital.pk)


@admin_required
@require_POST
def hospital_assign(request, pk):
    """Assign one published definition to this hospital from now (otherwise it uses the all-hospital one)."""
    hospital = _hospital(pk)
    definition_id = ascii_id(request.POST.get("definition", ""))
    definition = FormDefinition.objects.filter(pk=definition_id, status=FormDefinition.Status.PUBLISHED).first() \
        if definition_id is not None else None
    if definition is None:
        return _detail(request, hospital, status=400, error="公開済みの様式定義を選んでください。")
    services.hospital_assign(hospital, definition, user=request.user, request=request)
    messages.success(request, f"様式「{definition.version}」を割り当てました。")
    return redirect("central:hospital-detail", pk=hospital.pk)


@admin_required
@require_POST
def hospital_keys(request, pk):
    """Create, rotate (with overlap) or revoke a connector key of this hospital; a new key is shown once."""
    hospital = _hospital(pk)
    if not hospital.is_active and "create" in request.POST:
        return _detail(request, hospital, status=400, key_error="利用を停止した医療機関にはキーを作成できません。")
    shown, error = connector_keys_post(request, hospital)
    if shown is None and not error:
        return redirect("central:hospital-detail", pk=hospital.pk)
    return _detail(request, hospital, status=400 if error else 200, shown_key=shown, key_error=error)
