"""Pages of the hospital administrator. Thin: the rules are in accounts.admin_services and
accounts.connector_keys. Every page is of the administrator's own hospital; none shows patient values."""
from __future__ import annotations

from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assist_portal.accounts.admin_views import account_admin, connector_keys_post
from assist_portal.accounts.connector_keys import keys_for_hospital
from assist_portal.accounts.decorators import hospital_admin_required


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
