"""JSON endpoints the form calls while staff type a date, a フリガナ or a postal code, so the page and the server
understand input with one parser (``jpinput``). Staff only (password + TOTP). What is typed is patient data:
nothing here logs or audits it, responses are not cached (SecurityHeadersMiddleware sets no-store), and the
endpoints take POST (form-encoded, CSRF token in ``X-CSRFToken``) so typed values never sit in a URL, a browser
history or a proxy's access log."""
from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_POST

from assist_portal.accounts.decorators import staff_required
from jpinput import date_feedback, kana_feedback, postal_feedback

from . import services

#: Longest `q` any of these accepts; a form field longer than this is checked on save, not as one types.
MAX_QUERY = 2000
MAX_LENGTH_LIMIT = 100_000
TOO_LONG = "入力が長すぎます。"


def _query(request, name: str = "q") -> str | None:
    value = request.POST.get(name, "")
    return value if len(value) <= MAX_QUERY else None


def _too_long() -> JsonResponse:
    return JsonResponse({"message": TOO_LONG}, status=400)


@staff_required
@require_POST
def input_date(request):
    """`q=R3.1.10` → {"ok", "iso", "display", "message", "incomplete"}; today is the local (JST) date."""
    q = _query(request)
    if q is None:
        return _too_long()
    return JsonResponse(date_feedback(q, today=services.local_date()))


@staff_required
@require_POST
def input_kana(request):
    """`q=やまだ　たろう[&max=200]` → {"value": "ヤマダ　タロウ", "message": ""}."""
    q = _query(request)
    if q is None:
        return _too_long()
    try:
        max_length = int(request.POST["max"]) if request.POST.get("max") else None
    except ValueError:
        max_length = None
    if max_length is not None and not 0 < max_length <= MAX_LENGTH_LIMIT:
        max_length = None
    return JsonResponse(kana_feedback(q, max_length=max_length))


@staff_required
@require_POST
def input_postal(request):
    """`q=1000001[&address=…]` → {"code": "100-0001", "addresses": [{prefecture, city, town}], "message",
    "incomplete", "warning"} (warning: the address is not in the area of the code)."""
    q, address = _query(request), _query(request, "address")
    if q is None or address is None:
        return _too_long()
    return JsonResponse(postal_feedback(q, address or None))
