import json

from django.contrib import messages
from django.contrib.auth import logout
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from assist_portal.audit.services import audit_record
from assist_portal.inputs import ascii_id

from . import keys
from .decorators import verified_required
from .forms import EnrolForm, LoginForm, PortalPasswordChangeForm
from .services import (
    EnrolmentExpired,
    KeyStepRequired,
    LoginRefused,
    enrol_confirm,
    enrol_pending,
    enrol_start,
    login_complete,
    login_verify,
    password_change_complete,
    totp_qr_svg,
)


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return ""


START_PAGE = {"central_admin": "central:list", "hospital_admin": "hospitaladmin:staff"}


def start_page(user) -> str:
    """Each role's first page: hospital staff the worklist, administrators their own pages."""
    return START_PAGE.get(getattr(user, "role", ""), "notifications:list")


def home(request):
    return redirect(start_page(request.user))


def _after_sign_in(user, next_url: str):
    if user.must_change_password:
        query = "?" + urlencode({"next": next_url}) if next_url else ""
        return redirect(reverse("accounts:password_change") + query)
    return redirect(next_url or start_page(user))


@require_http_methods(["GET", "POST"])
def login_view(request):
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user, device = login_verify(request, form.cleaned_data["username"], form.cleaned_data["password"],
                                        form.cleaned_data["otp_token"])
        except LoginRefused as exc:
            error = str(exc)
        except KeyStepRequired as step:  # no code typed, a security key registered: the key step
            keys.key_sign_in_start(request, step.user, _safe_next(request))
            return redirect("accounts:login_key")
        else:
            if device is None:  # right password, no authenticator registered yet: first sign-in enrolment
                enrol_start(request, user, _safe_next(request))
                return redirect("accounts:enrol")
            login_complete(request, user, device)
            return _after_sign_in(user, _safe_next(request))
    elif request.method == "POST":
        error = "ユーザー名とパスワードを入力してください。"
    return render(request, "accounts/login.html", {"form": form, "error": error, "next": _safe_next(request)},
                  status=401 if error else 200)


@require_http_methods(["GET", "POST"])
def enrol_view(request):
    """First sign-in: register the authenticator app (QR) and prove it with a current code."""
    try:
        user, device, _ = enrol_pending(request)
    except EnrolmentExpired as exc:
        messages.error(request, str(exc))
        return redirect("accounts:login")
    form = EnrolForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user, next_url = enrol_confirm(request, form.cleaned_data["otp_token"])
        except EnrolmentExpired as exc:
            messages.error(request, str(exc))
            return redirect("accounts:login")
        except LoginRefused as exc:
            error = str(exc)
            try:
                enrol_pending(request)
            except EnrolmentExpired:  # locked: the enrolment was cancelled
                messages.error(request, error)
                return redirect("accounts:login")
        else:
            messages.success(request, "認証アプリを登録しました。次回からはパスワードと6桁のワンタイムパスワードでログインします。")
            return _after_sign_in(user, next_url)
    elif request.method == "POST":
        error = "認証アプリに表示された6桁を入力してください。"
    return render(request, "accounts/enrol.html", {
        "form": form, "error": error, "enrol_user": user, "qr": totp_qr_svg(device), "url": device.config_url},
        status=401 if error else 200)


@verified_required(allow_pending_password_change=True)
@require_http_methods(["GET", "POST"])
def password_change_view(request):
    form = PortalPasswordChangeForm(request.user, request.POST or None)
    forced = request.user.must_change_password
    if request.method == "POST" and form.is_valid():
        user = password_change_complete(request, form)
        messages.success(request, "パスワードを変更しました。")
        return _after_sign_in(user, _safe_next(request))
    return render(request, "accounts/password_change.html", {
        "form": form, "forced": forced, "next": _safe_next(request)}, status=400 if form.errors else 200)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit_record("logout", request=request)
    logout(request)
    return redirect("accounts:login")


# --- Security keys / passkeys (accounts.keys): the sign-in step, registration and removal ------------------------

def _json_body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _refused(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, json_dumps_params={"ensure_ascii": False})


@require_http_methods(["GET"])
def login_key_view(request):
    """Second step of a sign-in with a security key: the password was right; the page asks the key (static JS)."""
    try:
        user, _ = keys.key_sign_in_pending(request)
    except keys.KeySignInExpired as exc:
        messages.error(request, str(exc))
        return redirect("accounts:login")
    return render(request, "accounts/login_key.html", {"key_user": user})


@require_POST
def login_key_begin(request):
    try:
        return JsonResponse(keys.key_sign_in_begin(request))
    except keys.KeySignInExpired as exc:
        return _refused(str(exc), 403)


@require_POST
def login_key_complete(request):
    try:
        user, next_url = keys.key_sign_in_complete(request, _json_body(request))
    except keys.KeySignInExpired as exc:
        return _refused(str(exc), 403)
    except keys.KeyRefused as exc:
        return _refused(str(exc))
    target = _after_sign_in(user, next_url)["Location"]
    return JsonResponse({"redirect": target})


@verified_required()
@require_http_methods(["GET", "POST"])
def keys_view(request):
    """The signed-in person's security keys: list, add (JS ceremony against the two endpoints below), remove."""
    if request.method == "POST":
        removed = keys.key_remove(request, ascii_id(request.POST.get("remove")))
        if removed is None:
            raise Http404
        messages.success(request, f"セキュリティキー「{removed.name}」の登録を削除しました。")
        return redirect("accounts:keys")
    return render(request, "accounts/keys.html", {"keys": keys.keys_for_user(request.user),
                                                  "name_max": keys.NAME_MAX})


@verified_required()
@require_POST
def key_register_begin(request):
    try:
        return JsonResponse(keys.key_register_begin(request, name=_json_body(request).get("name") or ""))
    except keys.KeyRefused as exc:
        return _refused(str(exc))


@verified_required()
@require_POST
def key_register_complete(request):
    try:
        device = keys.key_register_complete(request, _json_body(request))
    except keys.KeyRefused as exc:
        return _refused(str(exc))
    messages.success(request, f"セキュリティキー「{device.name}」を登録しました。次回から、ワンタイムパスワードを空欄のまま"
                              "ログインすると、このキーで確認できます。")
    return JsonResponse({"redirect": reverse("accounts:keys")})
