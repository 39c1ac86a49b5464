from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from assist_portal.accounts.decorators import admin_required
from assist_portal.audit.selectors import audit_csv_rows, audit_events
from assist_portal.audit.services import audit_record
from assist_portal.inputs import bad_request, code, iso_date

FILTERS_HELP = "絞り込みの指定が正しくありません（hospital=医療機関コード、since/until=YYYY-MM-DD の実在する日付）。"


@admin_required
@require_GET
def audit_export(request):
    """The audit log as CSV (Q&A 24), optionally for one hospital and a date range. Filters are checked: a bad
    one is a 400 with a message, never an unfiltered export or a 500."""
    filters = {}
    for name, parse in (("hospital", code), ("since", iso_date), ("until", iso_date)):
        value = request.GET.get(name, "")
        if value:
            if parse(value) is None:
                return bad_request(request, FILTERS_HELP)
            filters[name] = value
    qs = audit_events(hospital_code=filters.get("hospital", ""), since=filters.get("since", ""),
                      until=filters.get("until", ""))
    audit_record("audit.export", request=request, filters=filters)
    response = StreamingHttpResponse(audit_csv_rows(qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
