"""Notification workflow: extract → launch → draft → confirm (→ outbox). Writes only; reads are in selectors."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

import mapping
from assist_portal.audit.services import audit_event, audit_record, audit_write
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import (
    HoldRefused,
    delivery_create,
    delivery_hold,
    delivery_release,
    delivery_withhold,
    payloads_purge,
)
from assist_portal.formdefs.models import FormDefinition
from assist_portal.formdefs.selectors import (
    definition_emr_items,
    definition_for_hospital,
    definition_id_in_effect,
    hospital_forms,
)
from assist_portal.sqlcache import CompiledModelQuery, writes_at_once
from formengine import evaluate
from formengine.valuetypes import check_value
from vocabulary import ids

from .documents import DocumentBuildError, revision_payload_freeze
from .models import Extract, FaxRecord, LaunchToken, Notification, NotificationRevision
from .reconcile import reconciled_for_extract
from .search import search_index_update
from .selectors import with_last_activity

LAUNCH_SALT = "assist_portal.launch"
FACILITY_ITEMS = {ids.REPORT_FACILITY_NAME: "name", ids.REPORT_FACILITY_ADDRESS: "address",
                  ids.REPORT_FACILITY_PHONE: "phone"}


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
    with transaction.atomic(savepoint=False):  # the caller's transaction when there is one (one commit)
        return _extract_store(hospital, payload, result, digest)


def _extract_store(hospital, payload: ExtractPayload, result: dict, digest: str) -> Extract:
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
    from .emr_changes import emr_changes_from_extract

    emr_changes_from_extract(extract)  # a newer extract of a patient with an open or confirmed notification
    return extract


def hospital_csv_profile(hospital) -> dict | None:
    """The hospital's DWH column profile as edited by a central admin (no hospital's profile ships in `mapping`)."""
    return hospital.csv_profile or None


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


# Every EMR launch, save and confirmation reads these (issue 13): compiled once per process (ADR 0018).
# Each locks its own rows only (`of=("self",)`): never the hospital or definition rows it reads with them, which
# every launch, push and confirmation of the hospital shares (locking them could deadlock a push against a launch).
# Notifications are locked in id order everywhere (`_PATIENT_CASES`, emr_changes._PATIENT_OPEN).
_LAUNCH_ROW = CompiledModelQuery(
    LaunchToken, lambda jti: LaunchToken.objects.select_for_update(of=("self",)).filter(jti=jti),
    related=("hospital", "extract"))
_LOCKED = CompiledModelQuery(
    Notification, lambda pk: Notification.objects.select_for_update(of=("self",)).filter(pk=pk),
    related=("definition", "hospital"), defer=("definition__definition",))  # a published one: the process's copy
_PATIENT_CASES = CompiledModelQuery(
    Notification,
    lambda hospital_id, form, patient_ref: (
        Notification.objects.select_for_update(of=("self",)).filter(hospital_id=hospital_id, form=form)
        .filter(Q(patient_ref=patient_ref, status__in=[Notification.Status.DRAFT, Notification.Status.CONFIRMED])
                | Q(patient_ref="", reconciled_at__isnull=False))
        .order_by("id")))


def _launch_row(jti: str, user):
    """The launch token row (locked), checked against the signed-in user. Returns (row, denied)."""
    row = _LAUNCH_ROW.first(jti)
    if row is None:
        raise InvalidLaunch("起動URLが正しくありません。")
    if not user.is_hospital_staff or user.hospital_id != row.hospital_id:
        return row, True
    if row.used_at is not None:
        raise InvalidLaunch("この起動URLは使用済みです。電子カルテのボタンからもう一度開いてください。")
    if row.expires_at <= timezone.now():
        raise InvalidLaunch("起動URLの有効期限が切れています。電子カルテのボタンからもう一度開いてください。")
    return row, False


def _launch_jti(token: str) -> str:
    try:
        return signing.TimestampSigner(salt=LAUNCH_SALT).unsign(token, max_age=settings.LAUNCH_TOKEN_TTL_SECONDS)
    except signing.SignatureExpired:
        raise InvalidLaunch("起動URLの有効期限が切れています。電子カルテのボタンからもう一度開いてください。")
    except signing.BadSignature:
        raise InvalidLaunch("起動URLが正しくありません。電子カルテのボタンからもう一度開いてください。")


def _launch_denied(row: LaunchToken, user, request) -> NotAllowed:
    # audited outside the transaction, so the refusal itself is kept
    audit_record("launch.denied", request=request, user=user, hospital_code=row.hospital.code,
                 object_type="launch", object_id=row.jti[:12])
    return NotAllowed("この患者の届出を開く権限がありません（所属医療機関が異なります）。")


def launch_token_check(token: str, user, request=None):
    """Check a launch token without using it (the form choice page): the hospital it opens for. Raises like
    `launch_open`; nothing about the patient is returned."""
    jti = _launch_jti(token)
    with transaction.atomic():
        row, denied = _launch_row(jti, user)
    if denied:
        raise _launch_denied(row, user, request)
    return row.hospital


def launch_open(token: str, user, request=None, *, form: str | None = None, case: str | None = None,
                definition: FormDefinition | None = None,
                shows_form: bool = False) -> tuple[Notification | None, dict | None]:
    """The EMR launch, in one transaction with one read of the token (issue 13). Checks the launch token against
    the signed-in user, then either asks Q&A 7 — returns (None, {earlier, suggested, form}) and leaves the URL
    usable — or spends the URL and opens (or creates) the patient's notification of `form` (None: the hospital's
    default form): returns (notification, None).
    `case`: "same" updates the patient's earlier notification, "new" starts another (a reinfection, another
    episode); None asks when the patient has an earlier confirmed notification of the form and no open draft.
    `definition`: the one the caller already chose for the user's own hospital (the view, when that hospital has
    one form); used only when the token is that hospital's. `shows_form`: the caller answers with the form page
    (the view of a notification this launch creates is then audited with the launch)."""
    jti = _launch_jti(token)
    question = None
    with transaction.atomic():
        row, denied = _launch_row(jti, user)
        if not denied:
            # The form is checked before the token is spent: a refused choice leaves the URL usable.
            if definition is None or row.hospital_id != user.hospital_id:
                definition = _definition_to_open(row.hospital, form)
            cases = _PatientCases(row.hospital, row.patient_ref, definition.form)
            earlier = cases.earlier() if case is None else None
            if earlier is not None:  # asked before the URL is spent, never assumed
                question = {"earlier": earlier, "suggested": case_suggestion(earlier), "form": definition.form}
            else:
                if row.extract.hospital_id == row.hospital_id:
                    row.extract.hospital = row.hospital  # already loaded with the token (no second query)
                row.used_at = timezone.now()
                row.used_by = user
                row.save(update_fields=["used_at", "used_by"])
                notification = _open_from_extract(row.extract, user, definition, case=case, cases=cases)
                events = [audit_event("launch.consume", request=request, user=user, obj=notification,
                                      form=notification.form, case=case or "window")]  # same commit as the launch
                if shows_form and getattr(notification, "just_created", False):
                    # the launch answers with the form of the notification it created: its view is recorded in
                    # the same statement (nothing autosaved to restore on a new notification)
                    events.append(audit_event("notification.view", request=request, user=user, obj=notification,
                                              restored=0))
                    notification.view_audited = True
                audit_write(events)
    if denied:
        raise _launch_denied(row, user, request)
    if question is not None:
        return None, question
    return notification, None


class _PatientCases:
    """The patient's notifications of one form that a launch may open (drafts and confirmed ones, newest first) and
    the hospital's notifications of that form taken back from HER-SYS without a patient id, read and locked in one
    statement (issue 13: the case question, the open-or-create choice and the reconciled match were three)."""

    def __init__(self, hospital, patient_ref: str, form: str):
        rows = _PATIENT_CASES.all(hospital.pk, form, patient_ref)  # locked in id order
        self.mine = sorted((r for r in rows if r.patient_ref == patient_ref),
                           key=lambda r: (r.created_at, r.id), reverse=True)  # newest first
        # in the model's order, as `reconcile.reconciled_for_extract` reads them itself
        self.reconciled = sorted((r for r in rows if r.patient_ref == "" and r.reconciled_at is not None),
                                 key=lambda r: (r.updated_at, r.id), reverse=True)

    def earlier(self) -> Notification | None:
        """The patient's newest confirmed notification, when no draft is open (an open draft is the case in
        progress: it is opened, nothing to ask; a withdrawn one cannot be updated)."""
        if any(r.status == Notification.Status.DRAFT for r in self.mine):
            return None
        return next((r for r in self.mine if r.status == Notification.Status.CONFIRMED), None)

    def to_open(self, case: str | None) -> Notification | None:
        """The notification a launch opens: the open draft or — by `case` (Q&A 7) — the confirmed one of the same
        case; None: a new one is created."""
        same_case_since = timezone.now() - timedelta(days=settings.CASE_REOPEN_DAYS)
        for row in self.mine:  # newest first
            if row.status == Notification.Status.DRAFT:
                return row
            if case == "same" or (case is None and row.created_at >= same_case_since):
                return row  # confirmed: "same" however long ago; by default within CASE_REOPEN_DAYS
        return None


def case_suggestion(earlier: Notification) -> str:
    """What CASE_REOPEN_DAYS suggests: the same case while the earlier one is that recent, else a new case."""
    same_case_since = timezone.now() - timedelta(days=settings.CASE_REOPEN_DAYS)
    return "same" if earlier.created_at >= same_case_since else "new"


def _definition_to_open(hospital, form: str | None) -> FormDefinition:
    definition = definition_for_hospital(hospital, form=form or None)
    if definition is not None:
        return definition
    if form and hospital_forms(hospital):
        raise WorkflowError(f"この医療機関では届出様式「{str(form)[:40]}」を使えません。一覧から様式を選び直してください。")
    raise WorkflowError("この医療機関に公開済みの届出様式がありません。中央管理者に連絡してください。")


def _emr_values(extract: Extract | None, definition: FormDefinition | None) -> tuple[dict, dict, dict]:
    """What an extract may fill in `definition`: only the items its catalog lists as EMR items (`emr_items`), only
    items the definition has, only values that pass the item's type check; rows of a repeat group keep their
    allowed, valid fields. Returns (values, provenance, suggestions). Without a definition: the extract as is."""
    if extract is None:
        return {}, {}, {}
    items = dict(extract.items or {})
    provenance = dict(extract.provenance or {})
    suggestions = dict(getattr(extract, "suggestions", None) or {})
    if definition is None:
        return items, provenance, suggestions
    defn = definition.definition
    allowed = definition_emr_items(definition)
    by_id = {i["id"]: i for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    groups = {g["id"]: g for g in defn.get("groups", []) or [] if isinstance(g, dict) and "id" in g}

    def may_fill(item_id: str) -> bool:
        return item_id in by_id and (allowed is None or item_id in allowed)

    values: dict[str, Any] = {}
    for key, value in items.items():
        if key in groups:
            rows = _emr_rows(groups[key], value, by_id, may_fill)
            if rows:
                values[key] = rows
        elif may_fill(key) and not by_id[key].get("group"):
            _, problem = check_value(by_id[key], value)
            if problem is None:
                values[key] = value
    kept_provenance = {k: v for k, v in provenance.items()
                       if k in values or (k.split("[", 1)[0] in values and k.split("[", 1)[0] in groups)}
    kept_suggestions = {k: v for k, v in suggestions.items() if may_fill(k)}
    return values, kept_provenance, kept_suggestions


def _emr_rows(group: dict, value: Any, by_id: dict, may_fill) -> list[dict]:
    if not isinstance(value, list):
        return []
    rows = []
    for raw in value[: group.get("max", len(value))]:
        if not isinstance(raw, dict):
            continue
        row = {}
        for key, cell in raw.items():
            item_id = f"{group['id']}.{key}"
            if may_fill(item_id) and cell not in (None, "", []) and check_value(by_id[item_id], cell)[1] is None:
                row[key] = cell
        if row:
            rows.append(row)
    return rows


def prefill_values(extract: Extract | None, hospital, user=None, definition: FormDefinition | None = None
                   ) -> tuple[dict, dict]:
    """Values and provenance for a new draft: the EMR items `definition` allows from the extract, the hospital
    master, defaults. Master and default items are set only when the definition has them."""
    values, provenance, _ = _emr_values(extract, definition)
    has = (lambda item_id: True) if definition is None else (
        lambda item_id: any(i.get("id") == item_id for i in definition.definition.get("items", [])))
    master = hospital.facility_master()
    for item_id, key in FACILITY_ITEMS.items():
        if master.get(key) and has(item_id):
            values[item_id] = master[key]
            provenance[item_id] = "master:facility"
    if (not values.get(ids.REPORT_PHYSICIAN_NAME) and user is not None and user.is_physician and user.display_name
            and has(ids.REPORT_PHYSICIAN_NAME)):
        values[ids.REPORT_PHYSICIAN_NAME] = user.display_name
        provenance[ids.REPORT_PHYSICIAN_NAME] = f"typed:{user.username}"
    if has(ids.REPORT_REPORT_DATE):
        values.setdefault(ids.REPORT_REPORT_DATE, local_date().isoformat())
        provenance.setdefault(ids.REPORT_REPORT_DATE, "computed:today")
    return values, provenance


def notification_open_from_extract(extract: Extract, user, *, form: str | None = None) -> Notification:
    """The patient's open notification of `form` (None: the hospital's default form), refreshed with EMR values
    it lacks, or a new one pre-filled from the extract."""
    with transaction.atomic():
        return _open_from_extract(extract, user, _definition_to_open(extract.hospital, form))


def _open_from_extract(extract: Extract, user, definition: FormDefinition, *, case: str | None = None,
                       cases: _PatientCases | None = None) -> Notification:
    if cases is None:
        cases = _PatientCases(extract.hospital, extract.patient_ref, definition.form)
    existing = cases.to_open(case)
    if existing is None:
        # After a restore, `manage.py reconcile` may have taken back a notification HER-SYS holds without knowing
        # the patient id: this launch adopts it (same name, birth date and sex) instead of filing a second one.
        existing = reconciled_for_extract(extract, definition.form, candidates=cases.reconciled)
        if existing is not None:
            existing.patient_ref = extract.patient_ref
            existing.save(update_fields=["patient_ref"])
    if existing is not None:
        # One notification per case and form: a later EMR launch opens it (changes become an update, never a
        # duplicate — Q&A 3, 7). What the new extract says differently is offered as pending EMR changes, never
        # applied by itself. A launch long after the case was notified (CASE_REOPEN_DAYS, e.g. a reinfection)
        # starts a new notification.
        return _refresh_from_extract(existing, extract)
    if case == "new":
        # this extract is about the new case: what its push offered on the earlier notification is not for it
        from .emr_changes import emr_changes_withdraw_for_new_case

        emr_changes_withdraw_for_new_case(extract, form=definition.form)
    values, provenance = prefill_values(extract, extract.hospital, user, definition)
    _, _, suggestions = _emr_values(extract, definition)
    evaluation = evaluate(definition.definition, values, today=local_date())  # the form page shows this one too
    try:
        with transaction.atomic():
            row = Notification.objects.create(
                hospital=extract.hospital, patient_ref=extract.patient_ref, extract=extract, definition=definition,
                form=definition.form, values=values, provenance=provenance, suggestions=suggestions,
                display_name=values.get(ids.PATIENT_NAME, ""), updated_by=user, created_by=user,
                missing_priority=list(evaluation.missing_priority),
            )
            search_index_update(row, created=True)
            # read by selectors.launched_for_form (nothing pending, nothing autosaved) and the launch's form page
            row.just_created, row.evaluation = True, evaluation
            return row
    except IntegrityError:  # a simultaneous launch created the draft first: use that one
        return _refresh_from_extract(
            Notification.objects.select_for_update().get(hospital=extract.hospital, patient_ref=extract.patient_ref,
                                                         form=definition.form, status=Notification.Status.DRAFT),
            extract)


def _refresh_from_extract(existing: Notification, extract: Extract) -> Notification:
    from .emr_changes import emr_changes_detect

    emr_changes_detect(existing, extract)
    return existing


def _missing_priority(definition: FormDefinition, values: dict) -> list[str]:
    """The priority items (Q&A 5) a draft still lacks, for the worklist (ids only)."""
    return list(evaluate(definition.definition, values, today=local_date()).missing_priority)


def changed_items(old: dict, new: dict) -> list[str]:
    """Which items differ between two value sets, for the audit log: item ids (a repeat group's cells as
    ``tests[0].method``), never values."""
    out = []
    for key in sorted(set(old or {}) | set(new or {})):
        a, b = (old or {}).get(key), (new or {}).get(key)
        if a == b:
            continue
        if isinstance(a, list) or isinstance(b, list):
            rows_a = a if isinstance(a, list) else []
            rows_b = b if isinstance(b, list) else []
            if all(isinstance(r, dict) for r in [*rows_a, *rows_b]):
                for i in range(max(len(rows_a), len(rows_b))):
                    ra = rows_a[i] if i < len(rows_a) else {}
                    rb = rows_b[i] if i < len(rows_b) else {}
                    out += [f"{key}[{i}].{f}" for f in sorted(set(ra) | set(rb)) if ra.get(f) != rb.get(f)]
                continue
        out.append(key)
    return out


def _merge_provenance(notification: Notification, new_values: dict, user) -> dict:
    """Provenance stays with the source while the value is unchanged; a changed value becomes 'typed'."""
    provenance = dict(notification.provenance)
    old = notification.values
    keys = set(old) | set(new_values)
    for key in keys:
        if key == ids.TESTS:
            old_tests, new_tests = old.get(ids.TESTS) or [], new_values.get(ids.TESTS) or []
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


class EditConflict(ConflictError):
    """Someone saved since the page was loaded and changed some of the same fields. Carries what the page needs to
    let the person choose per field: the row as saved now, the values merged so far (the other person's changes
    to fields this person did not touch are already in), and per conflicting item the three values."""

    def __init__(self, row: Notification, merged: dict, conflicts: list[dict]):
        who = str(row.updated_by) if row.updated_by_id else "他の利用者"
        t = timezone.localtime(row.updated_at)
        when = f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"
        super().__init__(f"{who}さんが{when}にこの届出を保存しました。同じ項目が変更されています"
                         f"（{len(conflicts)}件）。項目ごとに、どちらの値にするか選んでから、もう一度保存してください。"
                         "入力内容は画面に残しています。")
        self.row, self.merged, self.conflicts = row, merged, conflicts


#: Items that are never a person's conflict: derived from others (the age) or set from the master.
_NOT_CONFLICTING = ("computed", "master")


def concurrent_merge(row: Notification, base: dict | None, mine: dict) -> tuple[dict, list[dict]]:
    """Three-way merge of a save based on an older version: `base` (the values the page was loaded with), `mine`
    (what this person posts), the row's current values (theirs). A field only one side changed takes that side's
    value; a field both changed to different values is a conflict (without a base, every difference is one).
    Returns (merged values, [{item_id, base, mine, theirs}])."""
    theirs = row.values or {}
    merged: dict = {}
    conflicts = []
    for key in sorted(set(theirs) | set(mine) | set(base or {})):
        m, t = mine.get(key), theirs.get(key)
        b = (base or {}).get(key)
        kind = str((row.provenance or {}).get(key, "")).split(":", 1)[0]
        if m == t or kind in _NOT_CONFLICTING:
            value = t if kind in _NOT_CONFLICTING else m
        elif base is not None and m == b:
            value = t
        elif base is not None and t == b:
            value = m
        else:
            conflicts.append({"item_id": key, "base": b, "mine": m, "theirs": t})
            value = m  # shown as typed until the person chooses
        if value not in (None, "", []):
            merged[key] = value
    return merged, conflicts


def _locked_merged(notification_id: int, lock_version: int, values: dict, base: dict | None,
                   resolved: dict[str, str] | None) -> tuple[Notification, dict]:
    """The locked row and the values to save: as posted when the page's version is current; merged with what
    was saved meanwhile otherwise (EditConflict when the same field was changed on both sides and not resolved).
    `resolved`: {item_id: "mine" | "theirs"} chosen on the conflict page (its base is the version it showed)."""
    row = Notification.objects.select_for_update(of=("self",)).select_related(
        "definition", "hospital", "updated_by").get(pk=notification_id)
    if resolved:
        values = dict(values)
        for key, choice in resolved.items():
            if choice == "theirs" and base is not None:
                if key in base:
                    values[key] = base[key]
                else:
                    values.pop(key, None)
    if row.lock_version == lock_version:
        return row, values
    merged, conflicts = concurrent_merge(row, base, values)
    if conflicts:
        raise EditConflict(row, merged, conflicts)
    return row, merged


def _locked(notification_id: int, lock_version: int) -> Notification:
    row = _LOCKED.first(notification_id)
    if row is None:
        raise Notification.DoesNotExist("Notification matching query does not exist.")
    if row.lock_version != lock_version:
        raise ConflictError(
            "他の利用者がこの届出を先に保存しました。入力内容は画面に残しています。"
            "最新の内容を確認してから、もう一度保存してください。"
        )
    return row


def _adopted_matches(value, code) -> bool:
    """Whether the saved value still holds the suggested code (a multi-choice item holds it among others)."""
    return code in value if isinstance(value, list) and not isinstance(code, list) else value == code


def _mark_adopted(row: Notification, values: dict, adopted: tuple[str, ...], user) -> None:
    """Items whose EMR suggestion the person chose with 「採用」 in this save: provenance `adopted:<user>:<source>` (what the
    effort report counts as adopted from suggestions, exactly — a value typed by hand that happens to equal the
    suggestion stays `typed`). Only an item with a suggestion whose code the saved value holds."""
    for item_id in adopted:
        suggestion = (row.suggestions or {}).get(item_id)
        if not isinstance(suggestion, dict):
            continue
        code = suggestion.get("value")
        # adopted:<user>:<source> — the extract's format, or the suggestion's own source
        mark = f"adopted:{user.username}:" + str(suggestion.get("source")
                                                 or (row.extract.format if row.extract_id else "emr"))[:120]
        if isinstance(code, list):  # a list suggestion (e.g. resolved risk factors) is adopted one code at a time
            held = values.get(item_id) or []
            if any(c in held for c in code):
                row.provenance[item_id] = mark
        elif code is not None and _adopted_matches(values.get(item_id), code):
            row.provenance[item_id] = mark


# The columns `_apply_values` writes, and what a confirmation writes on top (`_apply_class_report_date`,
# `_confirm_locked`, `_handoff_clear`): a confirmation updates these only (issue 13: re-encrypting and rewriting
# the untouched columns — the EMR suggestions, the migration report — was a tenth of a confirmation's CPU).
# tests/portal/test_workflow.py::test_a_confirmation_stores_every_field_it_changes compares every column.
APPLY_WRITES = ("values", "provenance", "missing_priority", "display_name", "lock_version", "has_unsent_changes",
                "updated_at", "updated_by")
HANDOFF_FIELDS = ("review_requested_at", "review_requested_by", "review_physician", "review_note",
                  "returned_at", "returned_by", "returned_note")
# and the hand-off's and return's columns when there is one to clear (not rewritten empty on every confirmation)
CONFIRM_WRITES = (*APPLY_WRITES, "class_report_dates", "revision", "status", "follow_up_pending")


def _apply_values(row: Notification, values: dict, user, stage: str, adopted: tuple[str, ...] = ()):
    """Evaluate `values` against the row's definition and write them with provenance (row is locked)."""
    evaluation = evaluate(row.definition.definition, values, today=local_date(), provenance=row.provenance,
                          stage=stage)
    row.changed_items = changed_items(row.values, evaluation.values)  # for the audit (ids only)
    row.missing_priority = list(evaluation.missing_priority)
    row.provenance = _merge_provenance(row, evaluation.values, user)
    _mark_adopted(row, evaluation.values, adopted, user)
    row.provenance.update(evaluation.derived)  # derived and pre-filled values stay "computed", not "typed"
    row.values = evaluation.values
    row.display_name = evaluation.values.get(ids.PATIENT_NAME, "")
    row.lock_version += 1
    row.has_unsent_changes = True
    row.updated_at = timezone.now()
    row.updated_by = user
    return evaluation


def _apply_class_report_date(row: Notification, values: dict) -> None:
    """Q&A 3, 7, 8: a class change (疑似症 → 確定) is an edit of the same notification, and the report date of each
    class is the first day it was reported: the first confirmation keeps the form's date, a class first reported
    in a later revision gets today's date, and re-confirming a class keeps its first date."""
    cls = values.get(ids.REPORT_DIAGNOSIS_CLASS)
    if not cls:
        return
    dates = dict(row.class_report_dates or {})
    if cls not in dates:
        dates[cls] = (values.get(ids.REPORT_REPORT_DATE) if row.revision == 0 else None) or local_date().isoformat()
    if values.get(ids.REPORT_REPORT_DATE) != dates[cls]:
        values[ids.REPORT_REPORT_DATE] = dates[cls]
        row.provenance[ids.REPORT_REPORT_DATE] = "computed:first_report_of_class"
    row.class_report_dates = dates
    row.values = values


def notification_save(notification: Notification, user, values: dict, lock_version: int, request=None, *,
                      adopted: tuple[str, ...] = (), base: dict | None = None,
                      resolved: dict[str, str] | None = None):
    """Save a draft (or edits of a confirmed notification). Optimistic locking: never overwrite silently — a save
    based on an older version is merged with what was saved meanwhile (`base`: the values the page was loaded
    with); the same field changed on both sides raises EditConflict until the person chooses (`resolved`).
    `adopted`: the items whose EMR suggestion the person chose with 「採用」 (recorded as adopted from its source)."""
    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を編集する権限がありません。")
    with transaction.atomic():
        row, values = _locked_merged(notification.pk, lock_version, values, base, resolved)
        if row.status == Notification.Status.WITHDRAWN:
            raise WorkflowError("取り下げた届出は編集できません。")
        evaluation = _apply_values(row, values, user, "draft", adopted)
        row.save()
        search_index_update(row)
    audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version,
                 changed=row.changed_items, **({"adopted": list(adopted)} if adopted else {}))
    return row, evaluation


def _locked_for_confirmation(notification: Notification, user, lock_version: int) -> Notification:
    """Inside a transaction: the row locked for a physician's confirmation of it (optimistic lock included);
    refused for anyone else and once the notification is withdrawn."""
    if not user.is_physician or user.hospital_id != notification.hospital_id:
        raise NotAllowed("確定できるのは医師のみです。")
    row = _locked(notification.pk, lock_version)
    if row.status == Notification.Status.WITHDRAWN:
        raise WorkflowError("取り下げた届出は確定できません。")
    return row


def notification_confirm(notification: Notification, user, values: dict, lock_version: int, request=None):
    """The physician's explicit, audited confirmation: a revision and its outbox row in one transaction.

    The service-level path (benchmarks, the API of other services); people confirm through the review step
    (`notification_review_open` → `notification_confirm_reviewed`)."""
    with transaction.atomic():
        row = _locked_for_confirmation(notification, user, lock_version)
        return _confirm_locked(row, values, user, request)


@writes_at_once()  # the notification, payload, outbox row, revision and audit row: one statement (ADR 0023)
def _confirm_locked(row: Notification, values: dict, user, request, review_record: dict | None = None):
    evaluation = _apply_values(row, values, user, "confirm")
    if not evaluation.ok_to_confirm or not evaluation.notifiable:
        row.save(update_fields=APPLY_WRITES)  # what was typed is kept as a draft
        search_index_update(row)
        audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version,
                     confirm_refused=True, errors=len(evaluation.errors), changed=row.changed_items)
        return row, evaluation, None
    # HER-SYS may hold more revisions than the portal remembers (a restore from backup): number above them,
    # so the new values go as an update and are never answered with the old ones.
    # A first confirmation has no revision and so no delivery of its stream: nothing to ask for (issue 13).
    held = hersys_revision_held(row) if row.revision else (row.hersys_revision or 0)
    kind = (NotificationRevision.Kind.NEW if row.revision == 0 and held == 0
            else NotificationRevision.Kind.UPDATE)
    _apply_class_report_date(row, evaluation.values)
    previous = row.revisions.order_by("-number").first() if row.revision else None
    row.revision = max(row.revision, held) + 1
    row.status = Notification.Status.CONFIRMED
    row.has_unsent_changes = False
    row.follow_up_pending = False  # Q&A 5: the full set is sent (a minimum first report is now complete)
    handed = any(getattr(row, f.attname) for f in map(Notification._meta.get_field, HANDOFF_FIELDS))
    _handoff_clear(row)
    row.returned_at, row.returned_by, row.returned_note = None, None, ""
    row.save(update_fields=(*CONFIRM_WRITES, *HANDOFF_FIELDS) if handed else CONFIRM_WRITES)
    search_index_update(row, changed=row.changed_items)
    revision, delivery = _revision_write(row, kind=kind, definition=row.definition, values=evaluation.values,
                                         user=user, review=review_record)
    extra = {}
    if review_record is not None:
        extra = {"reviewed_sha256": revision.reviewed_sha256, "answers": review_record.get("answers", {}),
                 "physician_changed": review_record.get("physician_changed", False)}
    audit_record("notification.confirm", request=request, user=user, obj=row, revision=revision.number,
                 kind=kind, definition_hash=row.definition.content_hash, payload_sha256=revision.payload.sha256,
                 changed=row.changed_items,
                 changed_since_last_revision=changed_items(previous.values if previous else {}, evaluation.values),
                 **extra)
    return row, evaluation, delivery


class ReviewIncomplete(WorkflowError):
    """The review step lacks an explicit answer (an empty medical item, a different physician, a second factor)."""


def notification_review_open(notification: Notification, user, values: dict, lock_version: int, request=None):
    """確定 first validates: the posted values are saved as the draft and checked as a confirmation would be.
    Returns (row, evaluation, ok): ok → the review step may be shown; otherwise the errors go back to the form."""
    with transaction.atomic():
        row = _locked_for_confirmation(notification, user, lock_version)
        evaluation = _apply_values(row, values, user, "confirm")
        ok = evaluation.ok_to_confirm and evaluation.notifiable
        row.save()
        search_index_update(row)
        audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version,
                     changed=row.changed_items, review=ok, **({} if ok else {"confirm_refused": True,
                                                                             "errors": len(evaluation.errors)}))
    return row, evaluation, ok


def notification_review(notification: Notification, user):
    """The review of the stored draft as `user` would confirm it (see notifications.review)."""
    from .review import review_build

    previous = notification.revisions.order_by("-number").select_related("definition").first()
    return review_build(notification, notification.values, user, today=local_date(), previous=previous,
                        emr_suggestions=notification.suggestions or {})


def review_problems(review, answers: dict[str, str], change_physician: bool) -> list[str]:
    """What the review step still lacks, in Japanese: an explicit answer for each empty medical-judgement item
    (不明 / 該当なし, or adopting the EMR's suggestion) and, when the form names another physician, the change."""
    from .review import ANSWER_ADOPT, ANSWER_NOT_APPLICABLE, ANSWER_UNKNOWN

    out = []
    for need in review.needs_answer:
        allowed = {ANSWER_UNKNOWN, ANSWER_NOT_APPLICABLE} | ({ANSWER_ADOPT} if need["suggested_code"] else set())
        if answers.get(need["id"]) not in allowed:
            out.append(f"「{need['label']}」が未入力です。入力するか、「不明」または「該当なし」を選んでください。")
    if review.physician_differs and not change_physician:
        out.append(f"届出の医師（{review.physician_in_form or '未入力'}）と確定する医師（{review.physician_confirming}）が"
                   "異なります。届出の医師を変更するか、届出の医師本人が確定してください。")
    return out


def notification_confirm_reviewed(notification: Notification, user, *, lock_version: int, digest: str,
                                  answers: dict[str, str], change_physician: bool, second_factor_fresh: bool,
                                  second_factor_at: float | None = None, request=None):
    """The final click of the review step: confirms exactly what was reviewed (`digest`), once every empty
    medical-judgement item has an explicit answer, the form's physician is the confirming one (or was changed
    explicitly here) and the second factor was proven within OTP_RECHECK_MINUTES. The revision keeps what the
    physician saw (items as displayed, the answers, the digest)."""
    from formengine import adopt_suggestion

    from .review import ANSWER_ADOPT

    if not user.is_physician or user.hospital_id != notification.hospital_id:
        raise NotAllowed("確定できるのは医師のみです。")
    if not second_factor_fresh:  # proven within OTP_RECHECK_MINUTES, or again on this very click
        raise ReviewIncomplete("確定の前にワンタイムパスワードをもう一度入力してください。")
    with transaction.atomic():
        row = _locked_for_confirmation(notification, user, lock_version)
        review = notification_review(row, user)
        if review.digest != digest:
            raise ConflictError("確認画面を開いた後に届出の内容が変わりました。変更後の内容をもう一度確認してください。")
        problems = review_problems(review, answers, change_physician)
        if problems:
            raise ReviewIncomplete(" ".join(problems))
        given = {need["id"]: answers[need["id"]] for need in review.needs_answer}
        values = dict(row.values)
        for item_id, answer in given.items():
            if answer == ANSWER_ADOPT:
                need = next(n for n in review.needs_answer if n["id"] == item_id)
                values, _ = adopt_suggestion(row.definition.definition, values, f"{item_id}|{need['suggested_code']}")
        if review.physician_differs:
            values[ids.REPORT_PHYSICIAN_NAME] = review.physician_confirming
        record = {"digest": review.digest, "answers": given, "physician_changed": review.physician_differs,
                  "physician_in_form": review.physician_in_form, "second_factor_at": second_factor_at,
                  "shown": review.shown(), "diff": review.diff}
        return _confirm_locked(row, values, user, request, review_record=record)


def hersys_revision_held(row: Notification) -> int:
    """The newest revision HER-SYS reported holding for this notification (0: none known beyond the portal's):
    from reconciliation (`hersys_revision` on the notification, set by `manage.py reconcile`) and from what a
    delivery's check or conflict heard."""
    from_deliveries = (Delivery.objects.filter(stream=str(row.uuid), hersys_revision__isnull=False)
                       .aggregate(m=Max("hersys_revision"))["m"])
    return max(row.hersys_revision or 0, from_deliveries or 0)


NOTE_MAX = 1000


def _note(text) -> str:
    text = (text or "").strip() if isinstance(text, str) else ""
    if len(text) > NOTE_MAX:
        raise WorkflowError(f"メモは{NOTE_MAX}文字以内で入力してください（現在{len(text)}文字）。入力内容は画面に残しています。")
    return text


def _handoff_clear(row: Notification) -> None:
    row.review_requested_at = None
    row.review_requested_by = None
    row.review_physician = None
    row.review_note = ""


def notification_handoff(notification: Notification, user, values: dict, lock_version: int, *, physician_id=None,
                         note: str = "", request=None):
    """A clerk (or physician) saves the draft and hands it to 医師確認待ち, optionally to a named physician of the
    same hospital, with an optional note. Audited (the note itself is not: it may name the patient)."""
    note = _note(note)
    physician = None
    if physician_id:
        from assist_portal.accounts.models import User

        physician = User.objects.filter(pk=physician_id, hospital_id=notification.hospital_id,
                                        role=User.Role.PHYSICIAN, is_active=True).first()
        if physician is None:
            raise WorkflowError("依頼先の医師が見つかりません。一覧から選び直してください。")
    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を編集する権限がありません。")
    with transaction.atomic():
        row = _locked(notification.pk, lock_version)
        if row.status == Notification.Status.WITHDRAWN:
            raise WorkflowError("取り下げた届出は依頼できません。")
        evaluation = _apply_values(row, values, user, "draft")
        row.review_requested_at = timezone.now()
        row.review_requested_by = user
        row.review_physician = physician
        row.review_note = note
        row.returned_at, row.returned_by, row.returned_note = None, None, ""
        row.save()
        search_index_update(row)
        audit_record("notification.handoff", request=request, user=user, obj=row, lock_version=row.lock_version,
                     changed=row.changed_items, physician=physician.username if physician else "",
                     with_note=bool(note))
    return row, evaluation


def notification_return(notification: Notification, user, values: dict, lock_version: int, *, note: str = "",
                        request=None):
    """A physician returns a handed-off draft to 入力中 with a note (what is missing or wrong). Audited."""
    note = _note(note)
    if not user.is_physician or user.hospital_id != notification.hospital_id:
        raise NotAllowed("差し戻しできるのは医師のみです。")
    with transaction.atomic():
        row = _locked(notification.pk, lock_version)
        if row.review_requested_at is None:
            raise WorkflowError("この届出は医師確認待ちではありません。")
        evaluation = _apply_values(row, values, user, "draft")
        _handoff_clear(row)
        row.returned_at, row.returned_by, row.returned_note = timezone.now(), user, note
        row.save()
        search_index_update(row)
        audit_record("notification.return", request=request, user=user, obj=row, lock_version=row.lock_version,
                     changed=row.changed_items, with_note=bool(note))
    return row, evaluation


PATIENT_REF_MAX = 64


def notification_start_manual(user, *, patient_ref: str, form: str | None = None, request=None) -> Notification:
    """Without an EMR extract (a clinic without an EMR, an EMR outage): a notification opened by hand, with the
    same form, roles and delivery. Only the hospital master and today's date are filled; everything a person types
    carries 入力 provenance. An open draft of the same patient and form is opened instead of a second one."""
    if not user.is_hospital_staff:
        raise NotAllowed("届出を作成する権限がありません。")
    patient_ref = (patient_ref or "").strip()
    if not patient_ref:
        raise WorkflowError("患者IDを入力してください。")
    if len(patient_ref) > PATIENT_REF_MAX or any(not ch.isprintable() for ch in patient_ref):
        raise WorkflowError(f"患者IDは{PATIENT_REF_MAX}文字以内の文字で入力してください。")
    hospital = user.hospital
    with transaction.atomic():
        definition = _definition_to_open(hospital, form)
        existing = (Notification.objects.select_for_update()
                    .filter(hospital=hospital, patient_ref=patient_ref, form=definition.form,
                            status=Notification.Status.DRAFT).first())
        if existing is not None:
            created = False
            row = existing
        else:
            values, provenance = prefill_values(None, hospital, user, definition)
            row = Notification.objects.create(
                hospital=hospital, patient_ref=patient_ref, definition=definition, form=definition.form,
                values=values, provenance=provenance, display_name="", updated_by=user, created_by=user,
                missing_priority=_missing_priority(definition, values))
            search_index_update(row)
            created = True
    audit_record("notification.start_manual", request=request, user=user, obj=row, form=row.form, created=created)
    return row


def _revision_write(row: Notification, *, kind: str, definition, values: dict, user, review: dict | None = None,
                    scope: str = NotificationRevision.Scope.FULL):
    """The revision, its frozen document (built here, once) and its outbox row, inside the caller's transaction.
    The document is never rebuilt: every attempt and the connector's document endpoint use these bytes."""
    try:
        payload = revision_payload_freeze(notification=row, number=row.revision, kind=kind, definition=definition,
                                          values=values)
    except DocumentBuildError as exc:
        raise WorkflowError("HER-SYSへ送る文書を作成できませんでした。確定は行われていません。"
                            f"サポート窓口へ連絡してください（{exc}）。") from exc
    delivery = delivery_create(payload=payload, hospital=row.hospital, stream=str(row.uuid), sequence=row.revision)
    review = review or {}
    revision = NotificationRevision.objects.create(
        notification=row, number=row.revision, kind=kind, definition=definition, values=values, confirmed_by=user,
        payload=payload, delivery=delivery, review=review, reviewed_sha256=review.get("digest", ""), scope=scope,
    )
    return revision, delivery


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
        revision, delivery = _revision_write(row, kind=NotificationRevision.Kind.WITHDRAWAL,
                                             definition=last_confirmed.definition, values=last_confirmed.values,
                                             user=user)
        audit_record("notification.withdraw", request=request, user=user, obj=row, revision=revision.number,
                     payload_sha256=revision.payload.sha256)
    return row, delivery


def notification_migrate_if_needed(notification: Notification) -> Notification:
    """A draft follows its hospital's current definition; confirmed notifications keep their version."""
    from formengine import migrate_values

    if notification.status != Notification.Status.DRAFT:
        return notification
    # never another form; the id first (no definition loaded on every form GET), the definition only to migrate
    if hasattr(notification, "current_definition_id") and notification.form:  # read with the row (form page)
        current_id = notification.current_definition_id
    else:
        current_id = (definition_id_in_effect(form=notification.form, hospital=notification.hospital)
                      if notification.form else getattr(definition_for_hospital(notification.hospital), "pk", None))
    if current_id is None or current_id == notification.definition_id:
        return notification
    current = FormDefinition.objects.get(pk=current_id)
    with transaction.atomic():
        row = Notification.objects.select_for_update().select_related("definition").get(pk=notification.pk)
        if row.status != Notification.Status.DRAFT or row.definition_id == current.pk or current.form != row.form:
            return row
        values, report = migrate_values(row.definition.definition, current.definition, row.values)
        old_version = row.definition.version
        row.values = values
        row.missing_priority = _missing_priority(current, values)
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


def drafts_migrate(hospital=None, *, form: str | None = None) -> int:
    """Move drafts in flight (of `hospital`, of `form`) to the definition now in effect for their form."""
    qs = Notification.objects.filter(status=Notification.Status.DRAFT).select_related("hospital")
    if hospital is not None:
        qs = qs.filter(hospital=hospital)
    if form is not None:
        qs = qs.filter(form=form)
    count = 0
    for row in qs.iterator():
        before = row.definition_id
        if notification_migrate_if_needed(row).definition_id != before:
            count += 1
    return count


def notifications_purge(older_than_days: int, now=None) -> int:
    """Retention: once every revision of a notification is accepted (or it was withdrawn and that was accepted)
    and nothing changed for `older_than_days` (neither the notification nor its deliveries), its patient values
    and the documents sent are erased. The audit trail, receipts, hashes and metadata stay; the connector has had
    the document to store in the chart."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    candidates = (with_last_activity(Notification.objects.filter(revision__gt=0, purged_at__isnull=True)
                                     .exclude(status=Notification.Status.DRAFT))
                  .filter(last_activity__lt=cutoff).select_related("hospital"))
    purged = 0
    for row in candidates.iterator():
        revisions = list(NotificationRevision.objects.filter(notification=row).select_related("delivery")
                         .only("pk", "payload_id", "delivery__status"))
        if len(revisions) != row.revision or any(r.delivery is None or r.delivery.status != Delivery.Status.ACCEPTED
                                                 for r in revisions):
            continue  # something still in flight or needing attention: keep everything
        with transaction.atomic():
            Notification.objects.filter(pk=row.pk).update(values={}, suggestions={}, display_name="",
                                                          migration_report={}, class_report_dates={},
                                                          purged_at=now)
            NotificationRevision.objects.filter(notification=row).update(values={})
            payloads_purge(payload_ids=[r.payload_id for r in revisions], now=now)
            row.values = {}
            search_index_update(row)  # the erased name, kana and birth date can no longer be found
            Extract.objects.filter(hospital=row.hospital, patient_ref=row.patient_ref).delete()
        audit_record("notification.purge", hospital_code=row.hospital.code, obj=row, retention_days=older_than_days)
        purged += 1
    return purged


# ---- FAX is a state -------------------------------------------------------------------------------------------------

def notification_fax_record(notification: Notification, user, *, sent_at, health_centre: str, request=None):
    """「FAXで届出済みとして記録」 for the newest confirmed revision: when, to which health centre, by whom. Its
    electronic delivery, if it has not reached HER-SYS, is held (never sent) until someone decides
    (`notification_fax_decide`): a later automatic retry must not duplicate what the health centre typed from
    the fax. Audited."""
    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を操作する権限がありません。")
    health_centre = (health_centre or "").strip()
    if not health_centre or len(health_centre) > 100 or any(ord(ch) < 32 for ch in health_centre):
        raise WorkflowError("送付先の保健所名を100文字以内で入力してください。")
    if sent_at is None:
        raise WorkflowError("FAXを送った日時を入力してください（例: 2021-01-10 14:30）。")
    if sent_at > timezone.now() + timedelta(minutes=5):
        raise WorkflowError("FAXを送った日時が未来になっています。")
    with transaction.atomic():
        row = Notification.objects.select_for_update().get(pk=notification.pk)
        revision = row.revisions.select_related("delivery").order_by("-number").first()
        if revision is None:
            raise WorkflowError("FAXの記録は確定後に行います。先に医師が確定してください（送信は保留にできます）。")
        if FaxRecord.objects.filter(revision=revision).exists():
            raise WorkflowError(f"第{revision.number}版のFAX送付はすでに記録されています。")
        held = False
        if revision.delivery_id is not None and revision.delivery.status not in (Delivery.Status.ACCEPTED,):
            try:
                delivery_hold(revision.delivery_id)
                held = True
            except HoldRefused as exc:
                raise WorkflowError(str(exc)) from exc
        record = FaxRecord.objects.create(revision=revision, sent_at=sent_at, health_centre=health_centre,
                                          recorded_by=user,
                                          decision="" if held else FaxRecord.Decision.ELECTRONIC)
        audit_record("notification.fax_record", request=request, user=user, obj=row, revision=revision.number,
                     held=held)
    return record


def notification_fax_decide(notification: Notification, user, *, decision: str, request=None):
    """After a FAX: 「電子送信も行う（保健所と調整済み）」 releases the held delivery, 「FAXのみで完了」 withholds it for
    good (it never reaches HER-SYS). Audited."""
    if not user.is_hospital_staff or user.hospital_id != notification.hospital_id:
        raise NotAllowed("この届出を操作する権限がありません。")
    if decision not in (FaxRecord.Decision.ELECTRONIC, FaxRecord.Decision.FAX_ONLY):
        raise WorkflowError("「電子送信も行う」か「FAXのみで完了」を選んでください。")
    with transaction.atomic():
        record = (FaxRecord.objects.select_for_update().select_related("revision")
                  .filter(revision__notification=notification, decision="").order_by("-revision__number").first())
        if record is None:
            raise WorkflowError("電子送信の要否を選ぶ記録がありません（すでに選択済みです）。")
        if record.revision.delivery_id is not None:
            if decision == FaxRecord.Decision.ELECTRONIC:
                delivery_release(record.revision.delivery_id)
            else:
                delivery_withhold(record.revision.delivery_id)
        record.decision, record.decided_by, record.decided_at = decision, user, timezone.now()
        record.save(update_fields=["decision", "decided_by", "decided_at"])
        audit_record("notification.fax_decide", request=request, user=user, obj=notification,
                     revision=record.revision.number, decision=decision)
    return record
