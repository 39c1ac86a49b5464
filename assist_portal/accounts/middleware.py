import time

from django.apps import apps
from django.conf import settings
from django.contrib.auth import logout
from django_otp.middleware import OTPMiddleware
from django_otp.models import Device

from assist_portal.sqlcache import model_first

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class SecurityHeadersMiddleware:
    """Content-Security-Policy and no caching of pages with patient data."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        if not request.path.startswith(settings.STATIC_URL):
            response.setdefault("Cache-Control", "no-store")
        return response


class IdleSessionMiddleware:
    """A signed-in session with no activity for SESSION_IDLE_SECONDS ends (the next request signs out first and
    the view sends to the sign-in page with `next`). Background polling (status.json) is not activity."""

    PASSIVE_SUFFIXES = ("/status.json",)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            last = request.session.get("_last_activity")
            if last is not None and now - int(last) > settings.SESSION_IDLE_SECONDS:
                from assist_portal.audit.services import audit_record

                audit_record("session.idle_end", request=request, user=user, idle_seconds=now - int(last))
                logout(request)
            elif not request.path.endswith(self.PASSIVE_SUFFIXES) and (last is None or now - int(last) >= 30):
                request.session["_last_activity"] = now  # written at most every 30 s
        return self.get_response(request)


class PortalOTPMiddleware(OTPMiddleware):
    """django-otp's middleware with the second-factor device of every request read by a query compiled once per
    process (assist_portal.sqlcache; Django compiled it anew on every request — issue 13). Binding to the user,
    confirmation and the session clean-up stay django-otp's (`_finalize_device`)."""

    def _device_from_persistent_id(self, persistent_id: str):
        persistent_id = self._normalize_persistent_id(persistent_id)
        try:
            model_label, device_id = persistent_id.rsplit("/", 1)
            device_cls = apps.get_model(*model_label.split("."))
            device_id = int(device_id)
        except (ValueError, LookupError, TypeError):
            return None
        if not issubclass(device_cls, Device):
            return None
        return model_first(device_cls, "id", device_id)
