from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:home")),  # each role's start page
    path("accounts/", include("assist_portal.accounts.urls")),
    path("api/", include("assist_portal.api.urls")),
    path("central/", include("assist_portal.central.urls")),
    path("hospital/", include("assist_portal.hospitaladmin.urls")),
    path("", include("assist_portal.notifications.urls")),
]


def healthz(request):
    """Load-balancer probe: the database answers. No patient data, no authentication."""
    from django.db import connection
    from django.http import JsonResponse

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


urlpatterns.insert(0, path("healthz", healthz, name="healthz"))
