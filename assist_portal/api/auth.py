"""Hospital connectors authenticate with a per-hospital API key (behind mutual TLS at the edge proxy)."""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from assist_portal.accounts.models import Hospital


@dataclass
class ConnectorPrincipal:
    hospital: Hospital
    is_authenticated: bool = True
    username: str = "connector"
    role: str = "connector"

    @property
    def pk(self):
        return None


class HospitalApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(self.keyword + " "):
            return None
        key = header[len(self.keyword) + 1:].strip()
        hospital = Hospital.objects.filter(api_key_hash=Hospital.hash_api_key(key), is_active=True).first() if key else None
        if hospital is None:
            raise exceptions.AuthenticationFailed("APIキーが正しくありません。")
        return ConnectorPrincipal(hospital=hospital), hospital

    def authenticate_header(self, request):
        return self.keyword


class IsHospitalConnector(permissions.BasePermission):
    message = "医療機関の連携用APIキーが必要です。"

    def has_permission(self, request, view):
        return isinstance(request.user, ConnectorPrincipal)
