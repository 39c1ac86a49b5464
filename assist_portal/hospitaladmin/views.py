"""Pages of the hospital administrator. Thin: the rules are in accounts.admin_services and
accounts.connector_keys. Every page is of the administrator's own hospital; none shows patient values."""
from __future__ import annotations

from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assist_portal.accounts.admin_views import account_admin, connector_keys_post
from assist_portal.accounts.connector_keys import keys_for_hospital
from assist_portal.accounts.decorators import hospital_admin_required
from assist_portal.notifications.effort import effort_report


@hospital_admin_required
@require_http_methods(["GET", "POST"])
def staff(request):
    """The hospital's own physicians and clerks: create, reset a lost authenticator, unlock."""
    return account_admin(request, template="hospitaladmin/staff.html", page="hospitaladmin:staff")


def _settings(request, *, status=200, **extra):
    hospital = request.user.hospital
    return render(request, "hospitaladmin/settings.html", {
        "hospital": hospital, "keys": keys_for_hospital(hospital), "now": timezone.now(), **extra}, status=status)


@hospital_admin_required
@require_GET
def settings_page(request):
    """The hospital's facility master (kept by the data centre) and its connector keys."""
    return _settings(request)


@hospital_admin_required
@require_POST
def keys(request):
    """Create, rotate (with overlap) or revoke one of the hospital's connector keys; a new key is shown once."""
    shown, error = connector_keys_post(request, request.user.hospital)
    if shown is None and not error:
        return redirect("hospitaladmin:settings")
    return _settings(request, status=400 if error else 200, shown_key=shown, key_error=error)


@hospital_admin_required
@require_POST
def raw_push(request):
    """Switch on (for a while, e.g. to debug a mapping) or off the acceptance of raw EMR extracts; audited."""
    from django.contrib import messages

    from assist_portal.accounts.admin_services import hospital_raw_push_set

    enabled = request.POST.get("enabled")
    if enabled not in ("0", "1"):
        return _settings(request, status=400, error="操作が正しくありません。")
    hospital_raw_push_set(request.user.hospital, enabled=enabled == "1", by=request.user, request=request)
    messages.success(request, "抽出データそのものの受信を許可しました。調査が終わったら必ず元に戻してください。"
                     if enabled == "1" else "抽出データそのものの受信を止めました（項目のみを受け付けます）。")
    return redirect("hospitaladmin:settings")


@hospital_admin_required
@require_GET
def effort(request):
    """The effort report of the administrator's own hospital, per month: the figures of /central/effort/, counts and
    times only (no patient values, so nothing is audited)."""
    hospital = request.user.hospital
    return render(request, "hospitaladmin/effort.html", {"hospital": hospital,
                                                         "rows": effort_report(hospital=hospital)})
