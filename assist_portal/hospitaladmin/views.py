"""Pages of the hospital administrator. Thin: the rules are in accounts.admin_services."""
from __future__ import annotations

from django.views.decorators.http import require_http_methods

from assist_portal.accounts.admin_views import account_admin
from assist_portal.accounts.decorators import hospital_admin_required


@hospital_admin_required
@require_http_methods(["GET", "POST"])
def staff(request):
    """The hospital's own physicians and clerks: create, reset a lost authenticator, unlock."""
    return account_admin(request, template="hospitaladmin/staff.html", page="hospitaladmin:staff")
