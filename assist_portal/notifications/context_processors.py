"""The worklist's counts per state in the navigation of every page a physician or clerk sees (one query)."""
from __future__ import annotations

from django.urls import reverse


def worklist(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "is_hospital_staff", False):
        return {}
    if not user.is_verified():  # before the second factor: nothing about the hospital's cases
        return {}
    from .selectors import WORK_STATE_LABELS, WORK_STATES, worklist_counts

    counts = worklist_counts(user)
    base = reverse("notifications:list")
    return {"worklist_nav": [{"state": s.value, "label": WORK_STATE_LABELS[s], "count": counts[s.value],
                              "url": f"{base}?state={s.value}"} for s in WORK_STATES]}
