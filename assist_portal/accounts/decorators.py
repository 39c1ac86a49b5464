"""Access decorators: every human view needs a password + TOTP verified session and the right role, and an
account with an administrator-set (one-time) password must change it before anything else opens."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

HOSPITAL_INACTIVE = "所属医療機関の利用は停止されています。"


def verified_required(*roles: str, allow_pending_password_change: bool = False):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated or not user.is_verified():
                return redirect_to_login(request.get_full_path())
            if user.hospital_id is not None and not user.hospital_is_active:  # open sessions end with it
                raise PermissionDenied(HOSPITAL_INACTIVE)
            if user.must_change_password and not allow_pending_password_change:
                target = reverse("accounts:password_change") + "?" + urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(target)
            if roles and user.role not in roles:
                raise PermissionDenied("この画面を利用する権限がありません。")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


staff_required = verified_required("physician", "clerk")
admin_required = verified_required("central_admin")
hospital_admin_required = verified_required("hospital_admin")
