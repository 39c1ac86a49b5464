from django.shortcuts import redirect
from django.urls import include, path

urlpatterns = [
    path("", lambda request: redirect("notifications:list")),
    path("accounts/", include("assist_portal.accounts.urls")),
    path("api/", include("assist_portal.api.urls")),
    path("central/", include("assist_portal.central.urls")),
    path("input/", include("assist_portal.notifications.input_urls")),
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
