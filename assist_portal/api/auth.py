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


class PayloadTooLarge(Exception):
    pass


class SafeJSONParser:
    """DRF's JSON parser, but absurdly nested JSON is a clear 400 instead of a RecursionError (500)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        import io

        from django.conf import settings
        from rest_framework.exceptions import ParseError
        from rest_framework.parsers import JSONParser

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge()
        try:
            return JSONParser().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSONの入れ子が深すぎます。")


def api_exception_handler(exc, context):
    """Japanese, JSON errors for connectors, also for Django's own refusals (body too large, etc.)."""
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, (RequestDataTooBig, PayloadTooLarge)):
        return Response({"detail": "送信データが大きすぎます。"}, status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "要求が正しくありません。"}, status=400)
    return exception_handler(exc, context)
