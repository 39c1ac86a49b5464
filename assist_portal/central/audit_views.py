from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from assist_portal.accounts.decorators import admin_required
from assist_portal.audit.selectors import audit_csv_rows, audit_events
from assist_portal.audit.services import audit_record


@admin_required
@require_GET
def audit_export(request):
    """The audit log as CSV (Q&A 24), optionally for one hospital and a date range."""
    qs = audit_events(hospital_code=request.GET.get("hospital", ""), since=request.GET.get("since", ""),
                      until=request.GET.get("until", ""))
    audit_record("audit.export", request=request, filters=dict(request.GET.items()))
    response = StreamingHttpResponse(audit_csv_rows(qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
