"""Probes. No authentication, no patient data."""
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from . import selectors


@never_cache
def healthz(request):
    """Liveness for the load balancer: this web process answers and its database does."""
    if not selectors.database_ok():
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness of the whole product: database, broker, a live worker per queue, the scheduler, and no delivery
    overdue. 200 when all hold, 503 naming what does not (see docs/operations.md)."""
    ready, body = selectors.readiness()
    return JsonResponse(body, status=200 if ready else 503, json_dumps_params={"ensure_ascii": False})
