from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from assist_portal.audit.services import audit_record

from .forms import LoginForm
from .services import LoginRefused, login_complete, login_verify


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return ""


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
        else:
            login_complete(request, user, device)
            default = "formdefs:list" if user.is_central_admin else "notifications:list"
            return redirect(_safe_next(request) or default)
    elif request.method == "POST":
        error = "ユーザー名、パスワード、ワンタイムパスワードをすべて入力してください。"
    return render(request, "accounts/login.html", {"form": form, "error": error, "next": _safe_next(request)},
                  status=401 if error else 200)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit_record("logout", request=request)
    logout(request)
    return redirect("accounts:login")
