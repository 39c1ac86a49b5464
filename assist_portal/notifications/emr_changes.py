"""EMR updates (issue 9): a newer extract of a patient whose notification is open or confirmed is compared with what
the notification holds; each difference becomes a pending `EmrChange` that a person accepts or dismisses. Nothing is
applied by itself, so a value a person typed is never overwritten without that choice.

Writes only (reads: `selectors.emr_changes_pending`, `selectors.with_pending_emr_changes`)."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record
from assist_portal.formdefs.selectors import definition_emr_items
from assist_portal.sqlcache import CompiledModelQuery
from formengine import evaluate
from formengine.definition import groups_by_id, items_by_id
from vocabulary import ids

from .models import EmrChange, Extract, Notification

Kind = EmrChange.Kind
Status = EmrChange.Status
TEST_IDENTITY = (ids.row_key(ids.TESTS_METHOD), ids.row_key(ids.TESTS_SPECIMEN), ids.row_key(ids.TESTS_COLLECTION_DATE))
RESULT = ids.row_key(ids.TESTS_RESULT)
#: provenance prefixes that are not the EMR (a test row typed or adopted by a person is never offered for removal)
NOT_FROM_EMR = ("typed", "adopted", "computed", "master")


class EmrDecisionError(Exception):
    """A change that cannot be applied (e.g. a fifth test), with a Japanese message; the change stays pending."""


def _keyed(*parts: Any) -> str:
    body = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"emr-change:" + body, hashlib.sha256).hexdigest()


def test_identity(row: Any) -> tuple:
    """A test row is the same test when method, specimen and collection date are (a result may change)."""
    row = row if isinstance(row, dict) else {}
    return tuple(row.get(k) or "" for k in TEST_IDENTITY)


def _row_from_emr(provenance: dict, index: int) -> bool:
    sources = [v for k, v in provenance.items() if k.startswith(f"{ids.TESTS}[{index}].")]
    return bool(sources) and all(str(s).split(":", 1)[0].lower() not in NOT_FROM_EMR for s in sources)


def _row_source(provenance: dict, index: int) -> str:
    for field in (RESULT, *TEST_IDENTITY):
        source = provenance.get(f"{ids.TESTS}[{index}].{field}")
        if source:
            return str(source)[:200]
    return ""


def _differences(notification: Notification, extract: Extract) -> tuple[list[dict], set[str]]:
    """[{kind, item_id, slot, new, previous, source}] and the slots (item ids / test identities) the extract speaks
    about — pending changes of a covered slot that the extract no longer supports are superseded."""
    from .services import _emr_values  # the one rule of what an extract may fill in a definition

    defn = notification.definition.definition
    emr, provenance, _ = _emr_values(extract, notification.definition)
    current = notification.values or {}
    # What the EMR said when the notification last heard from it: a value a person typed over it is not offered
    # again while the EMR still says the same (only news from the EMR is a question).
    earlier, _, _ = (_emr_values(notification.extract, notification.definition)
                     if notification.extract_id and notification.extract_id != extract.pk else ({}, {}, {}))
    by_person = {k for k, v in (notification.provenance or {}).items()
                 if str(v).split(":", 1)[0].lower() in ("typed", "adopted")}
    out: list[dict] = []
    covered: set[str] = set()
    groups = groups_by_id(defn)
    for key, new in emr.items():
        if key in groups:
            continue
        covered.add(key)
        if key in by_person and earlier.get(key) == new:
            continue
        if current.get(key) != new:
            out.append({"kind": Kind.VALUE, "item_id": key, "slot": key, "new": new, "previous": current.get(key),
                        "source": str(provenance.get(key, extract.format))[:200]})
    allowed = definition_emr_items(notification.definition)
    if ids.TESTS in groups and (allowed is None or any(str(i).startswith(f"{ids.TESTS}.") for i in allowed)):
        emr_rows = emr.get(ids.TESTS) or []
        rows = current.get(ids.TESTS) or []
        by_identity = {test_identity(r): r for r in rows if isinstance(r, dict)}
        seen = set()
        for i, row in enumerate(emr_rows):
            identity = test_identity(row)
            seen.add(identity)
            slot = "tests:" + _keyed(*identity)[:32]
            covered.add(slot)
            source = next((str(provenance[f"{ids.TESTS}[{i}].{f}"])[:200] for f in (RESULT, *TEST_IDENTITY)
                           if f"{ids.TESTS}[{i}].{f}" in provenance), extract.format)
            held = by_identity.get(identity)
            if held is None:
                out.append({"kind": Kind.TEST_ADD, "item_id": ids.TESTS, "slot": slot, "new": row, "previous": None,
                            "source": source})
            else:
                merged = {**held, **{k: v for k, v in row.items() if v not in (None, "")}}
                if merged != held:
                    out.append({"kind": Kind.TEST_UPDATE, "item_id": ids.TESTS, "slot": slot, "new": merged,
                                "previous": held, "source": source})
        for i, row in enumerate(rows):
            identity = test_identity(row)
            if identity in seen or not _row_from_emr(notification.provenance or {}, i):
                continue
            slot = "tests:" + _keyed(*identity)[:32]
            covered.add(slot)  # the EMR no longer has this test (cancelled): offered as a removal
            out.append({"kind": Kind.TEST_REMOVE, "item_id": ids.TESTS, "slot": slot, "new": None, "previous": row,
                        "source": _row_source(notification.provenance or {}, i) or extract.format})
    # Q&A 3, 7: a positive result on a 疑似症 case offers the class change (an edit of the same notification).
    cls_item = items_by_id(defn).get(ids.REPORT_DIAGNOSIS_CLASS)
    codes = {v.get("code") for v in (cls_item or {}).get("values", []) or []}
    if (current.get(ids.REPORT_DIAGNOSIS_CLASS) == ids.CLASS_SUSPECTED_PATIENT
            and ids.CLASS_CONFIRMED_PATIENT in codes
            and any(isinstance(r, dict) and r.get(RESULT) == ids.RESULT_POSITIVE for r in emr.get(ids.TESTS) or [])):
        covered.add(ids.REPORT_DIAGNOSIS_CLASS)
        out.append({"kind": Kind.CLASS_CHANGE, "item_id": ids.REPORT_DIAGNOSIS_CLASS,
                    "slot": ids.REPORT_DIAGNOSIS_CLASS, "new": ids.CLASS_CONFIRMED_PATIENT,
                    "previous": ids.CLASS_SUSPECTED_PATIENT, "source": f"{extract.format}:positive-test"})
    return out, covered


def _slot(change: EmrChange) -> str:
    if change.item_id == ids.TESTS:
        return "tests:" + change.row_key
    return change.item_id


def emr_changes_detect(notification: Notification, extract: Extract) -> list[EmrChange]:
    """Compare `extract` with the notification (the caller holds its row lock) and record each difference as a
    pending change, once: an identical pending, accepted or dismissed change (same source value) is not offered
    again; a pending change the extract no longer supports is superseded."""
    if notification.status not in (Notification.Status.DRAFT, Notification.Status.CONFIRMED) or notification.purged_at:
        return []
    found, covered = _differences(notification, extract)
    existing = list(EmrChange.objects.filter(notification=notification).only(
        "id", "fingerprint", "status", "item_id", "row_key"))
    # a superseded change may come back (the EMR went back to that value); a decided one is not offered again
    decided = {c.fingerprint for c in existing if c.status != Status.SUPERSEDED}
    created = []
    fingerprints = set()
    for d in found:
        fp = _keyed(notification.pk, d["kind"], d["slot"], d["new"])
        fingerprints.add(fp)
        if fp in decided:
            continue
        created.append(EmrChange(
            notification=notification, extract=extract, kind=d["kind"], item_id=d["item_id"],
            row_key=d["slot"].split(":", 1)[1] if d["slot"].startswith("tests:") else "",
            new_value=d["new"], previous_value=d["previous"], source=d["source"], fingerprint=fp))
        decided.add(fp)
    stale = [c.pk for c in existing
             if c.status == Status.PENDING and c.fingerprint not in fingerprints and _slot(c) in covered]
    if stale:
        EmrChange.objects.filter(pk__in=stale).update(status=Status.SUPERSEDED, decided_at=timezone.now())
    EmrChange.objects.bulk_create(created)
    # the newest extract compared becomes the notification's EMR reference (no lock_version change: no value moved)
    Notification.objects.filter(pk=notification.pk).update(extract=extract)
    notification.extract = extract
    if created or stale:
        audit_record("emr_change.detect", hospital_code=notification.hospital.code, obj=notification,
                     extract=str(extract.uuid), offered=len(created), superseded=len(stale),
                     kinds=sorted({c.kind for c in created}))
    return created


# After every connector push (usually nothing to lock): compiled once per process (ADR 0018).
_PATIENT_OPEN = CompiledModelQuery(
    Notification,
    lambda hospital_id, patient_ref: (
        Notification.objects.select_for_update(of=("self",))  # not the hospital's row (see services._LOCKED)
        .filter(hospital_id=hospital_id, patient_ref=patient_ref, purged_at__isnull=True)
        .filter(status__in=[Notification.Status.DRAFT, Notification.Status.CONFIRMED]).order_by("id")),
    related=("definition", "hospital"))


def emr_changes_from_extract(extract: Extract) -> int:
    """After a push: every open or confirmed notification of the patient (a confirmed one within the same-case
    window, CASE_REOPEN_DAYS) gets the extract's differences as pending changes. Returns how many were offered."""
    same_case_since = timezone.now() - timedelta(days=settings.CASE_REOPEN_DAYS)
    offered = 0
    with transaction.atomic(savepoint=False):  # inside the push's transaction: no savepoint of its own
        rows = _PATIENT_OPEN.all(extract.hospital_id, extract.patient_ref)
        for row in rows:
            if row.status == Notification.Status.CONFIRMED and row.created_at < same_case_since:
                continue
            offered += len(emr_changes_detect(row, extract))
    return offered


def emr_changes_withdraw_for_new_case(extract: Extract, *, form: str) -> int:
    """Q&A 7: the person said this extract starts a new case — the changes its push offered on the patient's
    earlier notification of that form are not questions about that case any more (superseded, not dismissed:
    the same values may still be offered by a later extract of that case)."""
    return EmrChange.objects.filter(extract=extract, status=Status.PENDING, notification__form=form).update(
        status=Status.SUPERSEDED, decided_at=timezone.now())


# ---- decisions ---------------------------------------------------------------------------------------------------

def _set_row_provenance(provenance: dict, index: int, row: dict, source: str, only: set[str] | None = None) -> None:
    for field in row:
        if only is None or field in only:
            provenance[f"{ids.TESTS}[{index}].{field}"] = source


def _drop_row_provenance(provenance: dict, index: int) -> dict:
    """Provenance after removing test row `index`: later rows move up one."""
    out = {}
    prefix = f"{ids.TESTS}["
    for key, value in provenance.items():
        if key.startswith(prefix) and "]." in key:
            n, rest = key[len(prefix):].split("].", 1)
            if n.isdigit():
                n = int(n)
                if n == index:
                    continue
                if n > index:
                    key = f"{prefix}{n - 1}].{rest}"
        out[key] = value
    return out


def _apply(row: Notification, change: EmrChange, user) -> None:
    """Apply one change to the (locked) row's values and provenance; EmrDecisionError if it cannot be."""
    values, provenance = row.values, row.provenance
    defn = row.definition.definition
    if change.kind in (Kind.VALUE, Kind.CLASS_CHANGE):
        values[change.item_id] = change.new_value
        # a class change is a medical judgement a person adopted from the EMR's evidence
        provenance[change.item_id] = (f"adopted:{user.username}:{change.source}" if change.kind == Kind.CLASS_CHANGE
                                      else change.source)
        return
    rows = [dict(r) for r in values.get(ids.TESTS) or [] if isinstance(r, dict)]
    group = groups_by_id(defn).get(ids.TESTS) or {}
    limit = int(group.get("max") or 4)
    identity = test_identity(change.previous_value if change.kind == Kind.TEST_REMOVE else change.new_value)
    index = next((i for i, r in enumerate(rows) if test_identity(r) == identity), None)
    if change.kind == Kind.TEST_REMOVE:
        if index is not None:
            rows.pop(index)
            row.provenance = _drop_row_provenance(provenance, index)
    elif index is not None:  # add or update of a test the notification holds
        changed = {k for k, v in change.new_value.items() if rows[index].get(k) != v}
        rows[index] = {**rows[index], **change.new_value}
        _set_row_provenance(provenance, index, rows[index], change.source, changed)
    else:
        if len(rows) >= limit:
            raise EmrDecisionError(f"検査は{limit}件までです（Q&A 6）。不要な検査を削除してから反映してください。")
        rows.append(dict(change.new_value))
        _set_row_provenance(provenance, len(rows) - 1, rows[-1], change.source)
    values[ids.TESTS] = rows


def emr_changes_decide(row: Notification, user, *, accept: list[int], dismiss: list[int]) -> tuple[int, int, list[str]]:
    """Accept / dismiss pending changes of the locked `row` (inside the caller's transaction, which saves the row).
    Returns (accepted, dismissed, messages for changes that could not be applied — they stay pending)."""
    now = timezone.now()
    pending = {c.pk: c for c in EmrChange.objects.select_for_update().filter(
        notification=row, status=Status.PENDING, pk__in=[*accept, *dismiss])}
    accepted, dismissed, problems = 0, 0, []
    for pk in accept:
        change = pending.pop(pk, None)
        if change is None:
            continue
        if change.kind == Kind.CLASS_CHANGE and not user.is_physician:  # a medical judgement (Q&A 18)
            problems.append("類型の変更は医師が判断します。医師に確認を依頼してください（この変更は未確認のまま残しています）。")
            continue
        try:
            _apply(row, change, user)
        except EmrDecisionError as exc:
            problems.append(str(exc))
            continue
        change.status, change.decided_at, change.decided_by = Status.ACCEPTED, now, user
        change.save(update_fields=["status", "decided_at", "decided_by"])
        accepted += 1
    for pk in dismiss:
        change = pending.pop(pk, None)
        if change is None:
            continue
        change.status, change.decided_at, change.decided_by = Status.DISMISSED, now, user
        change.save(update_fields=["status", "decided_at", "decided_by"])
        dismissed += 1
    if accepted:
        # derived values (the age from a corrected birth date) follow; the accepted values keep the EMR source
        evaluation = evaluate(row.definition.definition, row.values, today=timezone.localdate(),
                              provenance=row.provenance, stage="draft")
        row.values = evaluation.values
        row.provenance.update(evaluation.derived)
        row.display_name = row.values.get(ids.PATIENT_NAME, "")
        row.has_unsent_changes = True  # on a confirmed notification: an amendment to confirm and send
        row.updated_at = now
        row.updated_by = user
    return accepted, dismissed, problems


def notification_emr_decide(notification: Notification, user, values: dict | None, lock_version: int, *,
                            accept: list[int], dismiss: list[int], request=None, base: dict | None = None):
    """The form page's 「反映」/「反映しない」 (one, or all shown): what the person typed on the page is saved first
    (as a draft save would), then the chosen changes are applied or dismissed — one transaction, optimistic lock.
    Returns (row, accepted, dismissed, problems)."""
    from .search import search_index_update
    from .services import NotAllowed, WorkflowError, _apply_values, _locked, _locked_merged, _missing_priority

    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を編集する権限がありません。")
    with transaction.atomic():
        if values is not None and base is not None:  # a page on an older version: merged like a save
            row, values = _locked_merged(notification.pk, lock_version, values, base, None)
        else:
            row = _locked(notification.pk, lock_version)
        if row.status == Notification.Status.WITHDRAWN:
            raise WorkflowError("取り下げた届出は編集できません。")
        if values is not None:
            _apply_values(row, values, user, "draft")
        else:
            row.lock_version += 1
        accepted, dismissed, problems = emr_changes_decide(row, user, accept=accept, dismiss=dismiss)
        row.missing_priority = _missing_priority(row.definition, row.values)
        row.save()
        search_index_update(row)
        audit_record("emr_change.decide", request=request, user=user, obj=row, accepted=accepted,
                     dismissed=dismissed, refused=len(problems), status=row.status)
    return row, accepted, dismissed, problems
