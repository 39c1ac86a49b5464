"""Reconciliation with HER-SYS after a restore from backup (`manage.py reconcile`, docs/operations.md).

A restored database forgets what happened after the dump; HER-SYS does not. For every notification HER-SYS stored
or changed since the dump (asked by the hospital's facility code), the portal is brought in line:
- revisions the portal still has and HER-SYS holds with the same content: their deliveries end accepted with
  HER-SYS's receipt (no send);
- revisions HER-SYS holds that the portal forgot (confirmed after the dump): taken back from the documents HER-SYS
  stored — the revision, its frozen bytes (exactly HER-SYS's), an accepted delivery and the values — so the next
  confirmation is an update above them (never a second filing, never the old values answered with the old receipt);
- notifications the portal forgot entirely: recreated with their identifier, matched to the patient by name, birth
  date and sex among the hospital's extracts; unmatched ones are adopted by the next EMR launch of that patient;
- whatever cannot be settled automatically is listed for a person (`Finding.needs_person`).
Pending and dead deliveries are also asked about one by one (`delivery_check`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from assist_portal.audit.events import AuditAction
from assist_portal.audit.services import audit_record
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_check, delivery_record_held, hersys_client, payload_create
from assist_portal.formdefs.models import FormDefinition
from assist_portal.formdefs.selectors import definition_for_hospital, item_set_version
from formengine import values_from_questionnaire_response
from hersys_client.bundle import questionnaire_form_version
from hersys_client.client import serialize_bundle
from vocabulary import ids

from .documents import DOCUMENT_CONTENT_TYPE
from .models import Extract, Notification, NotificationRevision

PROVENANCE = "hersys:reconciled"


@dataclass
class Finding:
    notification: str  # the Bundle identifier (the notification's uuid)
    receipt_id: str
    message: str  # Japanese, for the operator's list
    needs_person: bool = False


@dataclass
class Report:
    hospital: str
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0

    def add(self, *args, **kwargs) -> None:
        self.findings.append(Finding(*args, **kwargs))

    @property
    def needs_person(self) -> list[Finding]:
        return [f for f in self.findings if f.needs_person]


def hospital_reconcile(hospital, since: datetime, client=None) -> Report:
    """Bring one hospital's notifications in line with what HER-SYS holds of it since `since` (the dump's time,
    with a margin). Idempotent: running it twice changes nothing the second time."""
    client = client or hersys_client()
    report = Report(hospital=hospital.code)
    for holding in client.search(hospital.code, since):
        report.checked += 1
        _reconcile_one(hospital, holding, client, report)
    for pk in (Delivery.objects.filter(hospital=hospital, status__in=[Delivery.Status.QUEUED, Delivery.Status.RETRYING,
                                                                        Delivery.Status.DEAD])
               .values_list("pk", flat=True)):
        row = delivery_check(pk)
        if row is not None and row.status == Delivery.Status.ACCEPTED:
            report.add(row.stream, row.receipt_id, f"第{row.sequence}版: HER-SYSに登録済みでした。受理を記録しました。")
        elif row is not None and row.status == Delivery.Status.DEAD:
            report.add(row.stream, "", f"第{row.sequence}版: 送信停止のままです（HER-SYSに未登録）。再送するか、"
                                       "FAXで届け出たかを確認してください。", needs_person=True)
    return report


def _reconcile_one(hospital, holding, client, report: Report) -> None:
    notification = Notification.objects.filter(uuid=holding.bundle_identifier).first()
    if notification is not None and notification.hospital_id != hospital.pk:
        report.add(holding.bundle_identifier, holding.receipt_id,
                   "HER-SYSではこの医療機関の届出ですが、ポータルでは別の医療機関の届出です。", needs_person=True)
        return
    known = ({r.number: r for r in NotificationRevision.objects.filter(notification=notification)
              .select_related("payload", "delivery")} if notification is not None else {})
    for held in holding.revisions:
        revision = known.get(held.revision)
        if revision is None:
            continue
        if held.sha256 and revision.payload.sha256 and held.sha256 != revision.payload.sha256:
            report.add(holding.bundle_identifier, holding.receipt_id,
                       f"第{held.revision}版: HER-SYSとポータルで内容が異なります。届出を開いて確認し、"
                       "必要なら修正として確定し直してください。", needs_person=True)
        elif revision.delivery is not None and revision.delivery.status != Delivery.Status.ACCEPTED:
            row = delivery_check(revision.delivery.pk)
            if row is not None and row.status == Delivery.Status.ACCEPTED:
                report.add(holding.bundle_identifier, holding.receipt_id,
                           f"第{held.revision}版: HER-SYSに登録済みでした。受理を記録しました。")
    newest_known = max(known, default=0)
    missing = [h for h in holding.revisions if h.revision > newest_known]
    if not missing:
        return
    documents = [(h, client.document(holding.receipt_id, h.revision)) for h in missing]
    _take_back(hospital, notification, holding, documents, report)


def _take_back(hospital, notification, holding, documents, report: Report) -> None:
    """Write the revisions HER-SYS holds that the portal forgot, from HER-SYS's own documents."""
    last_doc = documents[-1][1]
    qr = _resource(last_doc, "QuestionnaireResponse") or {}
    definition = _definition(hospital, qr.get("questionnaire"))
    if definition is None:
        report.add(holding.bundle_identifier, holding.receipt_id,
                   f"HER-SYSの届出（第{holding.revision}版）の様式 {qr.get('questionnaire')} がポータルにありません。"
                   "中央管理者が様式を公開してから、もう一度照合してください。", needs_person=True)
        return
    now = timezone.now()
    with transaction.atomic():
        created = notification is None
        if created:
            values = values_from_questionnaire_response(definition.definition, qr)
            patient_ref = _match_patient(hospital, values)
            notification = Notification.objects.create(
                uuid=holding.bundle_identifier, hospital=hospital, patient_ref=patient_ref, definition=definition,
                form=definition.form, values={}, display_name=values.get(ids.PATIENT_NAME, ""),
                status=Notification.Status.CONFIRMED)
        row = Notification.objects.select_for_update().get(pk=notification.pk)
        before = dict(row.values)
        for held, document in documents:
            content = serialize_bundle(document)
            payload = payload_create(content=content, content_type=DOCUMENT_CONTENT_TYPE)
            if held.sha256 and payload.sha256 != held.sha256:
                raise RuntimeError(f"HER-SYS document of {holding.bundle_identifier} r{held.revision} does not "
                                   "match its hash")
            delivery = delivery_record_held(payload=payload, hospital=hospital, stream=str(row.uuid),
                                            sequence=held.revision, receipt=holding.receipt(held.revision))
            doc_qr = _resource(document, "QuestionnaireResponse") or {}
            kind = doc_qr.get("status") if doc_qr.get("status") in NotificationRevision.Kind.values else (
                NotificationRevision.Kind.UPDATE)
            NotificationRevision.objects.create(
                notification=row, number=held.revision, kind=kind, definition=definition, confirmed_by=None,
                values=values_from_questionnaire_response(definition.definition, doc_qr), payload=payload,
                delivery=delivery, confirmed_at=_received_at(held.received_at) or now)
        values = values_from_questionnaire_response(definition.definition, qr)
        row.values = values
        row.provenance = {key: PROVENANCE for key in values}
        row.display_name = values.get(ids.PATIENT_NAME, "")
        row.definition, row.form = definition, definition.form
        row.revision = holding.revision
        row.status = (Notification.Status.WITHDRAWN if holding.status == "withdrawn"
                      else Notification.Status.CONFIRMED)
        row.has_unsent_changes = False
        row.hersys_revision, row.hersys_receipt_id, row.reconciled_at = holding.revision, holding.receipt_id, now
        row.lock_version += 1
        row.updated_at = now
        row.save()
    numbers = "・".join(str(h.revision) for h, _ in documents)
    audit_record(AuditAction.NOTIFICATION_RECONCILE, hospital_code=hospital.code, obj=row, revisions=numbers,
                 receipt_id=holding.receipt_id, created=created)
    if created and not row.patient_ref:
        report.add(holding.bundle_identifier, holding.receipt_id,
                   f"ポータルが失っていた届出（第{holding.revision}版）を復元しましたが、患者IDを特定できません。"
                   "次にその患者を電子カルテから開くと、氏名・生年月日・性別が一致すればこの届出に結び付きます。",
                   needs_person=True)
    elif created:
        report.add(holding.bundle_identifier, holding.receipt_id,
                   f"ポータルが失っていた届出（患者ID {row.patient_ref}、第{holding.revision}版）を復元しました。")
    else:
        changed = before and any(before.get(k) != v for k, v in values.items())
        report.add(holding.bundle_identifier, holding.receipt_id,
                   f"復元で失われていた第{numbers}版をHER-SYSから取り戻しました（受付番号 {holding.receipt_id}）。"
                   + ("復元時点の下書きと値が異なるため、HER-SYSの内容を正としました。内容を確認してください。"
                      if changed else ""), needs_person=bool(changed))


def _definition(hospital, canonical) -> FormDefinition | None:
    form, version = questionnaire_form_version(canonical)
    if not form or not version:
        return None
    current = definition_for_hospital(hospital, form=form)
    if current is not None and item_set_version(current) == version:
        return current
    for candidate in FormDefinition.objects.filter(form=form, status=FormDefinition.Status.PUBLISHED).order_by(
            "-published_at", "-id"):
        if item_set_version(candidate) == version:
            return candidate
    return None


def _resource(bundle: Any, resource_type: str) -> dict | None:
    for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
            return resource
    return None


def _received_at(text: str):
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _person_key(values: dict) -> tuple | None:
    """Name (spaces ignored), birth date and sex: how a notification HER-SYS holds is matched to a patient of the
    hospital (the document carries no hospital patient id). None when any of them is missing."""
    name = re.sub(r"[\s\u3000]+", "", str(values.get(ids.PATIENT_NAME) or ""))
    birth, sex = values.get(ids.PATIENT_BIRTH_DATE), values.get(ids.PATIENT_SEX)
    return (name, str(birth), str(sex)) if name and birth and sex else None


def _match_patient(hospital, values: dict) -> str:
    """The one patient id of the hospital whose extracts name this person; '' when none or several do."""
    key = _person_key(values)
    if key is None:
        return ""
    found = {e.patient_ref for e in Extract.objects.filter(hospital=hospital).order_by("-received_at")[:20000]
             if _person_key(e.items or {}) == key}
    return found.pop() if len(found) == 1 else ""


def reconciled_for_extract(extract, form: str, candidates: list | None = None):
    """At an EMR launch: a notification taken back from HER-SYS without a patient id, for this person (call with
    the row locked inside the launch's transaction). None when there is none. `candidates`: those notifications
    when the caller has already read them (locked)."""
    if candidates is not None and not candidates:
        return None
    key = _person_key(extract.items or {})
    if key is None:
        return None
    if candidates is None:
        candidates = (Notification.objects.select_for_update()
                      .filter(hospital=extract.hospital, form=form, patient_ref="", reconciled_at__isnull=False))
    for row in candidates:
        if _person_key(row.values or {}) == key:
            return row
    return None
