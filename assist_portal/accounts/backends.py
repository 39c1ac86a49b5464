"""Authentication backend: Django's ModelBackend, loading the user's hospital with the user.

Every signed-in request reads `user.hospital` (the active-hospital check of every view, the navigation, the
tenant filter): as a lazy foreign key that was one more query per request (issue 13)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class PortalBackend(ModelBackend):
    def get_user(self, user_id):
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("hospital").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
