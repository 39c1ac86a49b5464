"""/central/effort/: the effort report of every hospital, per month (no patient values)."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assist_portal.accounts.decorators import admin_required
from assist_portal.notifications.effort import effort_report


@admin_required
@require_GET
def effort(request):
    # Counts and times only, like the delivery monitor: nothing here is patient data, so nothing is audited.
    return render(request, "central/effort.html", {"rows": effort_report()})
