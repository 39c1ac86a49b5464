"""Authentication backend: Django's ModelBackend, loading the user's hospital with the user.

Every signed-in request reads `user.hospital` (the active-hospital check of every view, the navigation, the
tenant filter): as a lazy foreign key that was one more query per request (issue 13). The query itself is
compiled once per process (assist_portal.sqlcache): Django compiled it anew on every request."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from assist_portal.sqlcache import model_first


class PortalBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            user_id = int(user_id)
        except (TypeError, ValueError):
            return None
        user = model_first(get_user_model(), "pk", user_id, related=("hospital",))
        if user is None:
            return None
        return user if self.user_can_authenticate(user) else None
