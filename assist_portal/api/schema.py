"""The OpenAPI description of the connector API (drf-spectacular, /api/schema/): the Api-Key header as its
security scheme, and the error answers every operation can give, with their one shape ({"detail": "…"})."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a Japanese message for the hospital's IT staff (validation errors name their fields)."""

    detail = serializers.CharField(help_text="理由（日本語）")
    errors = serializers.DictField(required=False, help_text="入力検証の誤り：項目ごとのメッセージ（400のときのみ）")

    class Meta:
        ref_name = "Error"


ERRORS = {
    "400": "要求の内容が正しくない（JSON、文字、項目、since の形式など）",
    "401": "APIキーがない、正しくない、失効・期限切れ、または医療機関の利用停止",
    "404": "指定した届出が自院にない",
    "413": "送信データが大きすぎる",
}


class ConnectorAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401"] + (["404"] if "{" in self.path else []) + (["413"] if self.method == "POST" else [])
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code]["description"] = ERRORS[code]
        return responses


class HospitalApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "assist_portal.api.auth.HospitalApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Authorization: Api-Key <連携用APIキー>`（医療機関ごとに発行。作成時に一度だけ表示）"}
