"""Central admin UI: form definitions and delivery monitoring. No patient data is shown here."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from assist_portal.accounts.decorators import admin_required
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_redrive

from .models import FormAssignment, FormDefinition


@admin_required
@require_GET
def definition_list(request):
    return render(request, "formdefs/list.html", {
        "definitions": FormDefinition.objects.all()[:100],
        "assignments": FormAssignment.objects.select_related("definition", "hospital")[:100],
    })


@admin_required
@require_GET
def delivery_monitor(request):
    status = request.GET.get("status", "")
    qs = Delivery.objects.select_related("hospital", "revision")
    if status:
        qs = qs.filter(status=status)
    counts = [(s, label, Delivery.objects.filter(status=s).count()) for s, label in Delivery.Status.choices]
    return render(request, "formdefs/deliveries.html", {"deliveries": qs[:200], "status": status, "counts": counts})


@admin_required
@require_POST
def delivery_redrive_view(request, pk):
    delivery = get_object_or_404(Delivery, pk=pk, status=Delivery.Status.DEAD)
    delivery_redrive(delivery, request.user, request)
    messages.success(request, "再送を開始しました。")
    return redirect("formdefs:deliveries")
