"""Notification workflow: extract → launch → draft → confirm (→ outbox). Writes only; reads are in selectors."""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

import mapping
from assist_portal.audit.services import audit_record
from assist_portal.delivery.services import delivery_create
from assist_portal.formdefs.selectors import definition_for_hospital
from formengine import evaluate

from .models import Extract, LaunchToken, Notification, NotificationRevision

LAUNCH_SALT = "assist_portal.launch"
FACILITY_ITEMS = {"report.facility_name": "name", "report.facility_address": "address",
                  "report.facility_phone": "phone"}


class WorkflowError(Exception):
    """A refused workflow step, with a message for the user (Japanese)."""


class ConflictError(WorkflowError):
    pass


class NotAllowed(WorkflowError):
    pass


class InvalidLaunch(WorkflowError):
    pass


@dataclass
class ExtractPayload:
    format: str  # the EMR extract's format (ss-mix2, fhir, csv)
    patient_ref: str
    data: Any  # raw push: bundle dict (fhir), {relpath: bytes} (ss-mix2), csv text/bytes; None for items
    # Items-only push (the default): the connector ran `mapping` inside the hospital; this is its result
    # (items, provenance, suggestions, warnings, already checked against the vocabulary) and the hash of what it read.
    extracted: dict | None = None
    source_sha256: str = ""


def local_date():
    return timezone.localdate()


def extract_receive(hospital, payload: ExtractPayload) -> Extract:
    """Store a pushed extract's notification items (encrypted): as the connector extracted them inside the
    hospital, or — raw push, only where the hospital switched it on — by running `mapping` here. Raw EMR data is
    never kept, only its hash."""
    if payload.extracted is not None:
        result, digest = payload.extracted, payload.source_sha256
    else:
        codes = mapping.load_local_codes(hospital.local_codes or {})
        try:
            result = mapping.formats.extract(payload.format, payload.data, codes, hospital_csv_profile(hospital))
        except mapping.formats.UnknownFormat as exc:
            raise WorkflowError(str(exc))
        digest = mapping.formats.content_sha256(payload.format, payload.data)
    extract = Extract.objects.create(
        hospital=hospital,
        patient_ref=payload.patient_ref,
        format=payload.format,
        items=result.get("items", {}),
        provenance=result.get("provenance", {}),
        suggestions=result.get("suggestions", {}),
        warnings=result.get("warnings", []),
        payload_sha256=digest,
    )
    audit_record("extract.receive", hospital_code=hospital.code, obj=extract, format=payload.format,
                 pushed="raw" if payload.extracted is None else "items", items=len(extract.items),
                 warnings=len(extract.warnings))
    return extract


def hospital_csv_profile(hospital) -> dict | None:
    """The hospital's DWH column profile as edited by a central admin, else the one shipped for its code."""
    if hospital.csv_profile:
        return hospital.csv_profile
    from pathlib import Path

    shipped = Path(mapping.__file__).parent / "profiles" / f"{hospital.code}.json"
    return json.loads(shipped.read_text(encoding="utf-8")) if shipped.exists() else None


def launch_token_issue(extract: Extract) -> tuple[str, Any]:
    """A signed, short-lived, single-use launch URL bound to hospital and patient."""
    jti = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.LAUNCH_TOKEN_TTL_SECONDS)
    LaunchToken.objects.create(jti=jti, hospital=extract.hospital, extract=extract,
                               patient_ref=extract.patient_ref, expires_at=expires_at)
    # Only the random id travels in the URL (no patient id in browser history or proxy logs); hospital and
    # patient are bound through the LaunchToken row.
    token = signing.TimestampSigner(salt=LAUNCH_SALT).sign(jti)
    return f"{settings.PUBLIC_BASE_URL}/launch/{token}/", expires_at


def launch_token_consume(token: str, user, request=None) -> Notification:
    """Check the launch token against the signed-in user; open (or create) the patient's draft."""
    try:
        jti = signing.TimestampSigner(salt=LAUNCH_SALT).unsign(token, max_age=settings.LAUNCH_TOKEN_TTL_SECONDS)
    except signing.SignatureExpired:
        raise InvalidLaunch("起動URLの有効期限が切れています。電子カルテのボタンからもう一度開いてください。")
    except signing.BadSignature:
        raise InvalidLaunch("起動URLが正しくありません。電子カルテのボタンからもう一度開いてください。")
    with transaction.atomic():
        row = (LaunchToken.objects.select_for_update().select_related("hospital", "extract")
               .filter(jti=jti).first())
        if row is None:
            raise InvalidLaunch("起動URLが正しくありません。")
        if not user.is_hospital_staff or user.hospital_id != row.hospital_id:
            denied = row
        else:
            denied = None
        if denied is not None:
            pass
        elif row.used_at is not None:
            raise InvalidLaunch("この起動URLは使用済みです。電子カルテのボタンからもう一度開いてください。")
        elif row.expires_at <= timezone.now():
            raise InvalidLaunch("起動URLの有効期限が切れています。電子カルテのボタンからもう一度開いてください。")
        else:
            row.used_at = timezone.now()
            row.used_by = user
            row.save(update_fields=["used_at", "used_by"])
            notification = notification_open_from_extract(row.extract, user)
    if denied is not None:  # audited outside the transaction, so the refusal itself is kept
        audit_record("launch.denied", request=request, user=user, hospital_code=denied.hospital.code,
                     object_type="launch", object_id=denied.jti[:12])
        raise NotAllowed("この患者の届出を開く権限がありません（所属医療機関が異なります）。")
    audit_record("launch.consume", request=request, user=user, obj=notification)
    return notification


def prefill_values(extract: Extract | None, hospital, user=None) -> tuple[dict, dict]:
    """Values and provenance for a new draft: EMR extract, hospital master, defaults."""
    values: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    if extract is not None:
        values.update(extract.items or {})
        provenance.update(extract.provenance or {})
    master = hospital.facility_master()
    for item_id, key in FACILITY_ITEMS.items():
        if master.get(key):
            values[item_id] = master[key]
            provenance[item_id] = "master:facility"
    if not values.get("report.physician_name") and user is not None and user.is_physician and user.display_name:
        values["report.physician_name"] = user.display_name
        provenance["report.physician_name"] = f"typed:{user.username}"
    values.setdefault("report.report_date", local_date().isoformat())
    provenance.setdefault("report.report_date", "computed:today")
    return values, provenance


def notification_open_from_extract(extract: Extract, user) -> Notification:
    """The patient's open draft, refreshed with EMR values it lacks, or a new one pre-filled from the extract."""
    with transaction.atomic():
        return _open_from_extract(extract, user)


def _open_from_extract(extract: Extract, user) -> Notification:
    same_case_since = timezone.now() - timedelta(days=settings.CASE_REOPEN_DAYS)
    existing = (Notification.objects.select_for_update()
                .filter(hospital=extract.hospital, patient_ref=extract.patient_ref)
                .filter(Q(status=Notification.Status.DRAFT)
                        | Q(status=Notification.Status.CONFIRMED, created_at__gte=same_case_since))
                .order_by("-created_at").first())
    if existing is not None:
        # One notification per case: a later EMR launch opens it (changes become an update, never a duplicate
        # — Q&A 3, 7). Only values it lacks are taken from the new extract. A launch long after the case was
        # notified (CASE_REOPEN_DAYS, e.g. a reinfection) starts a new notification.
        return _refresh_from_extract(existing, extract)
    definition = definition_for_hospital(extract.hospital)
    if definition is None:
        raise WorkflowError("この医療機関に公開済みの届出様式がありません。中央管理者に連絡してください。")
    values, provenance = prefill_values(extract, extract.hospital, user)
    try:
        with transaction.atomic():
            return Notification.objects.create(
                hospital=extract.hospital, patient_ref=extract.patient_ref, extract=extract, definition=definition,
                values=values, provenance=provenance, suggestions=extract.suggestions or {},
                display_name=values.get("patient.name", ""), updated_by=user,
            )
    except IntegrityError:  # a simultaneous launch created the draft first: use that one
        return _refresh_from_extract(
            Notification.objects.select_for_update().get(hospital=extract.hospital, patient_ref=extract.patient_ref,
                                                         status=Notification.Status.DRAFT), extract)


def _refresh_from_extract(existing: Notification, extract: Extract) -> Notification:
    changed = False
    for key, value in (extract.items or {}).items():
        if key not in existing.values or existing.values.get(key) in (None, "", []):
            existing.values[key] = value
            if key in (extract.provenance or {}):
                existing.provenance[key] = extract.provenance[key]
            changed = True
    if changed:
        existing.extract = extract
        existing.lock_version += 1
        existing.has_unsent_changes = True
        existing.updated_at = timezone.now()
        existing.save()
    return existing


def _merge_provenance(notification: Notification, new_values: dict, user) -> dict:
    """Provenance stays with the source while the value is unchanged; a changed value becomes 'typed'."""
    provenance = dict(notification.provenance)
    old = notification.values
    keys = set(old) | set(new_values)
    for key in keys:
        if key == "tests":
            old_tests, new_tests = old.get("tests") or [], new_values.get("tests") or []
            for i, row in enumerate(new_tests):
                prev = old_tests[i] if i < len(old_tests) else {}
                for field, value in row.items():
                    if prev.get(field) != value:
                        provenance[f"tests[{i}].{field}"] = f"typed:{user.username}"
            continue
        if old.get(key) != new_values.get(key):
            if key in new_values:
                provenance[key] = f"typed:{user.username}"
            else:
                provenance.pop(key, None)
    return provenance


def _locked(notification_id: int, lock_version: int) -> Notification:
    row = Notification.objects.select_for_update().select_related("definition", "hospital").get(pk=notification_id)
    if row.lock_version != lock_version:
        raise ConflictError(
            "他の利用者がこの届出を先に保存しました。入力内容は画面に残しています。"
            "最新の内容を確認してから、もう一度保存してください。"
        )
    return row


def _apply_values(row: Notification, values: dict, user, stage: str):
    """Evaluate `values` against the row's definition and write them with provenance (row is locked)."""
    evaluation = evaluate(row.definition.definition, values, today=local_date(), provenance=row.provenance,
                          stage=stage)
    row.provenance = _merge_provenance(row, evaluation.values, user)
    row.provenance.update(evaluation.derived)  # derived and pre-filled values stay "computed", not "typed"
    row.values = evaluation.values
    row.display_name = evaluation.values.get("patient.name", "")
    row.lock_version += 1
    row.has_unsent_changes = True
    row.updated_at = timezone.now()
    row.updated_by = user
    return evaluation


def _apply_class_report_date(row: Notification, values: dict) -> None:
    """Q&A 3, 7, 8: a class change (疑似症 → 確定) is an edit of the same notification, and the report date of each
    class is the first day it was reported: the first confirmation keeps the form's date, a class first reported
    in a later revision gets today's date, and re-confirming a class keeps its first date."""
    cls = values.get("report.diagnosis_class")
    if not cls:
        return
    dates = dict(row.class_report_dates or {})
    if cls not in dates:
        dates[cls] = (values.get("report.report_date") if row.revision == 0 else None) or local_date().isoformat()
    if values.get("report.report_date") != dates[cls]:
        values["report.report_date"] = dates[cls]
        row.provenance["report.report_date"] = "computed:first_report_of_class"
    row.class_report_dates = dates
    row.values = values


def notification_save(notification: Notification, user, values: dict, lock_version: int, request=None):
    """Save a draft (or edits of a confirmed notification). Optimistic locking: never overwrite silently."""
    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を編集する権限がありません。")
    with transaction.atomic():
        row = _locked(notification.pk, lock_version)
        if row.status == Notification.Status.WITHDRAWN:
            raise WorkflowError("取り下げた届出は編集できません。")
        evaluation = _apply_values(row, values, user, "draft")
        row.save()
    audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version)
    return row, evaluation


def notification_confirm(notification: Notification, user, values: dict, lock_version: int, request=None):
    """The physician's explicit, audited confirmation: a revision and its outbox row in one transaction."""
    if not user.is_physician or user.hospital_id != notification.hospital_id:
        raise NotAllowed("確定できるのは医師のみです。")
    with transaction.atomic():
        row = _locked(notification.pk, lock_version)
        if row.status == Notification.Status.WITHDRAWN:
            raise WorkflowError("取り下げた届出は確定できません。")
        evaluation = _apply_values(row, values, user, "confirm")
        if not evaluation.ok_to_confirm or not evaluation.notifiable:
            row.save()  # what was typed is kept as a draft
            audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version,
                         confirm_refused=True, errors=len(evaluation.errors))
            return row, evaluation, None
        kind = NotificationRevision.Kind.NEW if row.revision == 0 else NotificationRevision.Kind.UPDATE
        _apply_class_report_date(row, evaluation.values)
        row.revision += 1
        row.status = Notification.Status.CONFIRMED
        row.has_unsent_changes = False
        row.save()
        revision = NotificationRevision.objects.create(
            notification=row, number=row.revision, kind=kind, definition=row.definition,
            values=evaluation.values, confirmed_by=user,
        )
        delivery = delivery_create(revision)
        audit_record("notification.confirm", request=request, user=user, obj=row, revision=revision.number,
                     kind=kind, definition_hash=row.definition.content_hash)
    return row, evaluation, delivery


def notification_withdraw(notification: Notification, user, lock_version: int, request=None):
    """Withdraw a confirmed notification: sent as a `stopped` revision, never deleted."""
    if not user.is_physician or user.hospital_id != notification.hospital_id:
        raise NotAllowed("取下げできるのは医師のみです。")
    with transaction.atomic():
        row = _locked(notification.pk, lock_version)
        if row.status != Notification.Status.CONFIRMED:
            raise WorkflowError("確定済みの届出のみ取り下げできます。")
        row.revision += 1
        row.status = Notification.Status.WITHDRAWN
        row.lock_version += 1
        row.updated_at = timezone.now()
        row.updated_by = user
        row.save()
        last_confirmed = row.revisions.order_by("-number").first()  # not later, unconfirmed draft edits
        revision = NotificationRevision.objects.create(
            notification=row, number=row.revision, kind=NotificationRevision.Kind.WITHDRAWAL,
            definition=last_confirmed.definition, values=last_confirmed.values, confirmed_by=user,
        )
        delivery = delivery_create(revision)
        audit_record("notification.withdraw", request=request, user=user, obj=row, revision=revision.number)
    return row, delivery


def notification_migrate_if_needed(notification: Notification) -> Notification:
    """A draft follows its hospital's current definition; confirmed notifications keep their version."""
    from formengine import migrate_values

    if notification.status != Notification.Status.DRAFT:
        return notification
    current = definition_for_hospital(notification.hospital)
    if current is None or current.pk == notification.definition_id:
        return notification
    with transaction.atomic():
        row = Notification.objects.select_for_update().select_related("definition").get(pk=notification.pk)
        if row.status != Notification.Status.DRAFT or row.definition_id == current.pk:
            return row
        values, report = migrate_values(row.definition.definition, current.definition, row.values)
        old_version = row.definition.version
        row.values = values
        labels = {item["id"]: item["label"] for item in current.definition.get("items", [])}
        row.migration_report = {"from": old_version, "to": current.version, "report": _jsonable(report),
                                "missing_labels": [labels.get(i, i) for i in report.missing_required]}
        row.definition = current
        row.lock_version += 1
        row.updated_at = timezone.now()
        row.save()
    audit_record("notification.migrate", hospital_code=row.hospital.code, obj=row, to=current.version,
                 from_version=old_version)
    return row


def _jsonable(value):
    import dataclasses

    if dataclasses.is_dataclass(value):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def drafts_migrate(hospital=None) -> int:
    qs = Notification.objects.filter(status=Notification.Status.DRAFT).select_related("hospital")
    if hospital is not None:
        qs = qs.filter(hospital=hospital)
    count = 0
    for row in qs.iterator():
        before = row.definition_id
        if notification_migrate_if_needed(row).definition_id != before:
            count += 1
    return count


def notifications_purge(older_than_days: int, now=None) -> int:
    """Retention: once every revision of a notification is accepted (or it was withdrawn and that was accepted)
    and nothing changed for `older_than_days`, its patient values are erased. The audit trail, receipts and
    metadata stay; the connector has had the document to store in the chart."""
    from assist_portal.delivery.models import Delivery

    now = now or timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    candidates = (Notification.objects.filter(updated_at__lt=cutoff, revision__gt=0, purged_at__isnull=True)
                  .exclude(status=Notification.Status.DRAFT))
    purged = 0
    for row in candidates.iterator():
        deliveries = Delivery.objects.filter(revision__notification=row)
        if deliveries.count() != row.revision or deliveries.exclude(status=Delivery.Status.ACCEPTED).exists():
            continue  # something still in flight or needing attention: keep everything
        with transaction.atomic():
            Notification.objects.filter(pk=row.pk).update(values={}, suggestions={}, display_name="",
                                                          migration_report={}, class_report_dates={},
                                                          purged_at=now)
            for revision in NotificationRevision.objects.filter(notification=row):
                NotificationRevision.objects.filter(pk=revision.pk).update(values={})
            Extract.objects.filter(hospital=row.hospital, patient_ref=row.patient_ref).delete()
        audit_record("notification.purge", hospital_code=row.hospital.code, obj=row, retention_days=older_than_days)
        purged += 1
    return purged
