from django.shortcuts import redirect
from django.urls import include, path

from assist_portal.health.views import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", lambda request: redirect("notifications:list")),
    path("accounts/", include("assist_portal.accounts.urls")),
    path("api/", include("assist_portal.api.urls")),
    path("central/", include("assist_portal.central.urls")),
    path("input/", include("assist_portal.notifications.input_urls")),
    path("", include("assist_portal.notifications.urls")),
]
