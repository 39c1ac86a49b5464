from django.urls import include, path
from django.views.generic import RedirectView

from assist_portal.health.views import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", RedirectView.as_view(pattern_name="accounts:home")),  # each role's start page
    path("accounts/", include("assist_portal.accounts.urls")),
    path("api/", include("assist_portal.api.urls")),
    path("central/", include("assist_portal.central.urls")),
    path("hospital/", include("assist_portal.hospitaladmin.urls")),
    path("input/", include("assist_portal.notifications.input_urls")),
    path("", include("assist_portal.notifications.urls")),
]
