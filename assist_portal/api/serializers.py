import base64
import binascii
import re

from rest_framework import serializers

from assist_portal.inputs import MAX_UTC_OFFSET_HOURS, iso_datetime
from mapping import formats

MAX_FILES = 2000
PATIENT_REF = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


class FileSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=500)
    data_base64 = serializers.CharField()

    def validate_path(self, value):
        if value.startswith("/") or ".." in value.split("/"):
            raise serializers.ValidationError("ファイルパスが不正です。")
        return value

    def validate_data_base64(self, value):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("base64として読めません。")


#: The default push: only the notification items the connector extracted inside the hospital.
ITEMS = "items"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ExtractPushSerializer(serializers.Serializer):
    """Items-only (format "items", the default): `source_format`, `items`, `provenance`, `suggestions`,
    `warnings`, `source_sha256` — what `mapping` yielded inside the hospital. Raw (format ss-mix2|fhir|csv, only
    for a hospital whose administrator switched it on): the extract itself in `files` | `bundle` | `csv*`."""

    patient_id = serializers.CharField(max_length=64)
    format = serializers.ChoiceField(choices=(ITEMS, *formats.FORMATS))
    source_format = serializers.ChoiceField(choices=formats.FORMATS, required=False)
    items = serializers.JSONField(required=False)
    provenance = serializers.JSONField(required=False)
    suggestions = serializers.JSONField(required=False)
    warnings = serializers.JSONField(required=False)
    source_sha256 = serializers.CharField(required=False, max_length=64)
    mapping_version = serializers.CharField(required=False, max_length=40)
    bundle = serializers.JSONField(required=False)
    csv = serializers.CharField(required=False, trim_whitespace=False, max_length=5_000_000)
    csv_base64 = serializers.CharField(required=False, max_length=7_000_000)

    def validate_csv_base64(self, value):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("base64として読めません。")
    files = FileSerializer(many=True, required=False)

    def validate_patient_id(self, value):
        if not PATIENT_REF.match(value):
            raise serializers.ValidationError("患者IDは英数字・ハイフン・下線のみ、64文字以内です。")
        return value

    def validate(self, attrs):
        """Each format carries its data in its own field; `source()` hands it to `mapping.formats.extract`."""
        if attrs["format"] == ITEMS:
            return self._validate_items(attrs)
        if attrs["format"] == formats.CSV:
            if not attrs.get("csv") and not attrs.get("csv_base64"):
                raise serializers.ValidationError(
                    {"csv": "CSV形式では csv（文字列）または csv_base64（元のバイト列、Shift_JIS可）が必要です。"})
        elif attrs["format"] == formats.FHIR:
            if not isinstance(attrs.get("bundle"), dict):
                raise serializers.ValidationError({"bundle": "FHIR形式では bundle（JSONオブジェクト）が必要です。"})
        else:
            files = attrs.get("files") or []
            if not files:
                raise serializers.ValidationError({"files": "SS-MIX2形式では files が必要です。"})
            if len(files) > MAX_FILES:
                raise serializers.ValidationError({"files": f"ファイル数が多すぎます（最大{MAX_FILES}件）。"})
        return attrs


    def _validate_items(self, attrs):
        from .items import annotations_problems, items_problems

        errors = {}
        if "source_format" not in attrs:
            errors["source_format"] = f"読み取った抽出データの形式（{' / '.join(formats.FORMATS)}）を指定してください。"
        if not SHA256.match(attrs.get("source_sha256", "")):
            errors["source_sha256"] = "読み取った抽出データの SHA-256（16進64桁）を指定してください。"
        problems = items_problems(attrs.get("items"))
        if problems:
            errors["items"] = problems[:20]
        attrs.setdefault("provenance", {})
        attrs.setdefault("suggestions", {})
        attrs.setdefault("warnings", [])
        problems = annotations_problems(attrs["provenance"], attrs["suggestions"], attrs["warnings"])
        if problems:
            errors["annotations"] = problems[:20]
        raw = [name for name in ("bundle", "files", "csv", "csv_base64") if name in attrs]
        if raw:  # nothing of the extract itself rides along with the items
            errors["format"] = f"項目のみの送信に抽出データ（{', '.join(raw)}）を含めないでください。"
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ExtractResultSerializer(serializers.Serializer):
    extract_id = serializers.UUIDField()
    launch_url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    items_filled = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField())


def pushed_source(data: dict):
    """The pushed extract as `mapping.formats.extract` takes it (raw push only)."""
    if data["format"] == formats.FHIR:
        return data["bundle"]
    if data["format"] == formats.CSV:
        return data.get("csv_base64") or data["csv"]
    return {f["path"]: f["data_base64"] for f in data["files"]}


def pushed_items(data: dict) -> dict:
    """The items-only push as the result of `mapping` (what `extract_receive` stores)."""
    return {key: data[key] for key in ("items", "provenance", "suggestions", "warnings")}


SINCE_HELP = (f"この日時より後に変わった届出だけを返します。ISO 8601（例: 2022-09-26T09:00:00+09:00）。UTCとの時差は"
              f"±{MAX_UTC_OFFSET_HOURS}:00まで。時差を省略するとサーバーの時間帯（Asia/Tokyo）とみなします。")


class FeedQuerySerializer(serializers.Serializer):
    since = serializers.CharField(required=False, max_length=40, help_text=SINCE_HELP)

    def validate_since(self, value):
        when = iso_datetime(value)
        if when is None:
            raise serializers.ValidationError(
                f"since は ISO 8601 の日時で指定してください（例: 2022-09-26T09:00:00+09:00、時差は±{MAX_UTC_OFFSET_HOURS}:00まで）。")
        return when


class FeedDeliverySerializer(serializers.Serializer):
    status = serializers.CharField()
    label = serializers.CharField()
    final = serializers.BooleanField()
    receipt_id = serializers.CharField(required=False, allow_null=True)


class FeedRowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    patient_id = serializers.CharField()
    status = serializers.CharField()
    revision = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    delivery = FeedDeliverySerializer()


class FeedSerializer(serializers.Serializer):
    results = FeedRowSerializer(many=True)
