"""Hospital connectors authenticate with one of their hospital's connector keys (accounts.connector_keys), behind
mutual TLS at the edge proxy."""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions
from rest_framework.exceptions import ValidationError

from assist_portal.accounts.connector_keys import connector_key_authenticate
from assist_portal.accounts.models import ConnectorKey, Hospital


@dataclass
class ConnectorPrincipal:
    hospital: Hospital
    key: ConnectorKey | None = None
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
        row = connector_key_authenticate(header[len(self.keyword) + 1:].strip())
        if row is None:  # unknown, revoked, past its rotation overlap, or of a deactivated hospital: one answer
            raise exceptions.AuthenticationFailed("APIキーが正しくありません。")
        return ConnectorPrincipal(hospital=row.hospital, key=row), row.hospital

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
            data = JSONParser().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSONの入れ子が深すぎます。")
        if has_lone_surrogate(data):
            raise ParseError("JSONに文字として読めない値（対になっていないサロゲート \\ud800 など）が含まれています。"
                             "文字コードを確認してください。")
        return data


def has_lone_surrogate(data) -> bool:
    """True when a string anywhere (keys too) holds a lone UTF-16 surrogate (JSON "\\ud800"): it is no character,
    cannot be encoded, stored or sent on. A properly paired escape ("\\ud83d\\ude00") is one real character."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def api_exception_handler(exc, context):
    """Japanese, JSON errors for connectors, also for Django's own refusals (body too large, etc.)."""
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, (RequestDataTooBig, PayloadTooLarge)):
        return Response({"detail": "送信データが大きすぎます。"}, status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "要求が正しくありません。"}, status=400)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError) and not (
            isinstance(response.data, dict) and set(response.data) == {"detail"}):
        # One shape for every refusal: {"detail": "…"}; a validation error also names its fields ("errors").
        response.data = {"detail": "入力内容が正しくありません：" + _first_message(response.data),
                         "errors": response.data}
    return response


def _first_message(errors) -> str:
    path = []
    while isinstance(errors, (dict, list)) and errors:
        if isinstance(errors, dict):
            key = next(iter(errors))
            if key != "non_field_errors":
                path.append(str(key))
            errors = errors[key]
        else:
            errors = next((e for e in errors if e), errors[0])
    return (".".join(path) + ": " if path else "") + str(errors)
