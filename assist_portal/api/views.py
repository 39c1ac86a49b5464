from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from assist_portal.audit.events import AuditAction
from assist_portal.audit.services import audit_record
from assist_portal.notifications import selectors
from assist_portal.notifications.services import ExtractPayload, WorkflowError, extract_receive, launch_token_issue

from .serializers import ExtractPushSerializer, ExtractResultSerializer, pushed_source


@extend_schema(request=ExtractPushSerializer, responses={201: ExtractResultSerializer})
@api_view(["POST"])
def extract_push(request):
    """The hospital connector pushes one patient's EMR extract and receives a one-time launch URL."""
    serializer = ExtractPushSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    hospital = request.auth
    source = pushed_source(data)
    try:
        extract = extract_receive(hospital, ExtractPayload(format=data["format"], patient_ref=data["patient_id"],
                                                           data=source))
    except WorkflowError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    url, expires_at = launch_token_issue(extract)
    body = {"extract_id": extract.uuid, "launch_url": url, "expires_at": expires_at,
            "items_filled": len(extract.items), "warnings": extract.warnings}
    return Response(ExtractResultSerializer(body).data, status=status.HTTP_201_CREATED)


@api_view(["GET"])
def notification_feed(request):
    """Confirmed notifications of the connector's own hospital, for the chart (pulled: outbound only)."""
    try:
        rows = selectors.notification_feed(request.auth, since=request.query_params.get("since"))
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
