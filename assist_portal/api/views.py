from datetime import UTC

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from assist_portal.audit.events import AuditAction
from assist_portal.audit.services import audit_record
from assist_portal.notifications import selectors
from assist_portal.notifications.services import (
    ExtractPayload,
    WorkflowError,
    extract_receive,
    hospital_csv_profile,
    launch_token_issue,
)

from .serializers import (
    ITEMS,
    SINCE_HELP,
    ExtractPushSerializer,
    ExtractResultSerializer,
    FeedQuerySerializer,
    FeedSerializer,
    pushed_items,
    pushed_source,
)

RAW_PUSH_REFUSED = ("この医療機関では抽出データそのものは受け付けません。コネクタは届出の項目だけを送信してください"
                    "（format \"items\"）。マッピングの調査などで必要な場合は、医療機関の管理者が設定で一時的に許可できます。")


@extend_schema(request=ExtractPushSerializer, responses={201: ExtractResultSerializer})
@api_view(["POST"])
def extract_push(request):
    """The hospital connector pushes one patient's notification items (extracted inside the hospital; a raw
    extract only where the hospital switched it on) and receives a one-time launch URL."""
    serializer = ExtractPushSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    hospital = request.auth
    if data["format"] == ITEMS:
        payload = ExtractPayload(format=data["source_format"], patient_ref=data["patient_id"], data=None,
                                 extracted=pushed_items(data), source_sha256=data["source_sha256"])
    elif not hospital.raw_push_enabled:
        audit_record("extract.refused", hospital_code=hospital.code, object_type="extract", format=data["format"])
        return Response({"detail": RAW_PUSH_REFUSED}, status=status.HTTP_403_FORBIDDEN)
    else:
        payload = ExtractPayload(format=data["format"], patient_ref=data["patient_id"], data=pushed_source(data))
    try:
        with transaction.atomic():  # the extract, its audit row and its launch URL: all or nothing, one commit
            extract = extract_receive(hospital, payload)
            url, expires_at = launch_token_issue(extract)
    except WorkflowError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    body = {"extract_id": extract.uuid, "launch_url": url, "expires_at": expires_at,
            "items_filled": len(extract.items), "warnings": extract.warnings}
    return Response(ExtractResultSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME, OpenApiParameter.QUERY, required=False,
                                             description=SINCE_HELP)],
               responses={200: FeedSerializer})
@api_view(["GET"])
def notification_feed(request):
    """Confirmed notifications of the connector's own hospital, for the chart (pulled: outbound only)."""
    query = FeedQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)  # since: a real date-time with a real offset, else 400
    since = query.validated_data.get("since")
    try:
        rows = selectors.notification_feed(request.auth, since=since.astimezone(UTC).isoformat()
                                           if since else None)
    except selectors.FeedCursorError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    audit_record("api.feed", hospital_code=request.auth.code, object_type="feed", count=len(rows))
    return Response({"results": rows})


def _gone(request, revision, action: AuditAction) -> Response | None:
    """410 with a clear Japanese message when the retention purge erased the revision (None otherwise)."""
    message = selectors.purged_message(revision)
    if message is None:
        return None
    audit_record(action, hospital_code=request.auth.code, obj=revision.notification,
                 revision=revision.number, gone=True)
    purged_at = selectors.revision_purged_at(revision)
    return Response({"detail": message, "purged_at": purged_at.isoformat()}, status=status.HTTP_410_GONE)


@api_view(["GET"])
def notification_pdf(request, uuid):
    """The newest confirmed revision as a PDF, for the chart (410 once the retention purge erased it)."""
    from django.http import HttpResponse

    from assist_portal.notifications.pdf import revision_pdf

    revision = selectors.latest_revision(request.auth, uuid)
    if revision is None:
        return Response({"detail": "見つかりません。"}, status=status.HTTP_404_NOT_FOUND)
    gone = _gone(request, revision, AuditAction.API_PDF)
    if gone is not None:
        return gone
    audit_record("api.pdf", hospital_code=request.auth.code, obj=revision.notification, revision=revision.number)
    response = HttpResponse(revision_pdf(revision, request.auth), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="notification-{uuid}-r{revision.number}.pdf"'
    return response


@api_view(["GET"])
def notification_document(request, uuid):
    """The FHIR document Bundle of the newest revision exactly as it was frozen at confirmation (the bytes sent to
    HER-SYS; `ETag`/`Repr-Digest` carry their sha256), for the chart. 410 once the retention purge erased it."""
    import base64

    from django.http import HttpResponse

    revision = selectors.latest_revision(request.auth, uuid, with_document=True)
    if revision is None:
        return Response({"detail": "見つかりません。"}, status=status.HTTP_404_NOT_FOUND)
    gone = _gone(request, revision, AuditAction.API_DOCUMENT)
    if gone is not None:
        return gone
    payload = revision.payload
    if payload.content is None:
        return Response({"detail": selectors.MISSING_MESSAGE}, status=status.HTTP_404_NOT_FOUND)
    audit_record("api.document", hospital_code=request.auth.code, obj=revision.notification,
                 revision=revision.number, sha256=payload.sha256)
    response = HttpResponse(payload.content, content_type=f"{payload.content_type}; charset=utf-8")
    response["ETag"] = f'"{payload.sha256}"'
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(payload.sha256)).decode()}:"
    return response


class MappingTablesSerializer(serializers.Serializer):
    local_codes = serializers.JSONField(help_text="院内コード表（検査項目・検体 → HER-SYS）")
    csv_profile = serializers.JSONField(allow_null=True, help_text="DWH/CSV 列対応プロファイル（なければ null）")


@extend_schema(responses={200: MappingTablesSerializer})
@api_view(["GET"])
def mapping_tables(request):
    """The hospital's mapping tables as the central admins keep them, for the connector's extraction inside the
    hospital (pulled: outbound only)."""
    hospital = request.auth
    return Response({"local_codes": hospital.local_codes or {}, "csv_profile": hospital_csv_profile(hospital)})
