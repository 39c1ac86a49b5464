"""Thin views over notification services/selectors. Every view needs password + TOTP and the user's hospital."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assist_portal.accounts.decorators import staff_required
from assist_portal.accounts.services import (
    OTP_RECHECK_FAILURE,
    OTP_VERIFIED_AT_KEY,
    otp_recheck,
    otp_verified_recently,
)
from assist_portal.audit.services import audit_record
from assist_portal.inputs import ascii_id
from formengine import adopt_suggestion, iter_fields, parse_form_input, present
from formengine.render import change_notice
from mapping import formats
from vocabulary import ids

from . import autosave, emr_changes, minimum, selectors, services
from .paper import paper_form_for

log = logging.getLogger(__name__)


def _post_lists(request) -> dict[str, list[str]]:
    return {key: request.POST.getlist(key) for key in request.POST if key not in ("csrfmiddlewaretoken",)}


BASE_SALT = "assist_portal.notifications.base"


def base_token(values: dict) -> str:
    """The values a page was loaded with, signed: a later save is merged against them (concurrent edits)."""
    return signing.dumps(values, salt=BASE_SALT, compress=True)


def _posted_base(request) -> dict | None:
    token = request.POST.get("base", "")
    if not token or len(token) > 200_000:
        return None
    try:
        value = signing.loads(token, salt=BASE_SALT, max_age=7 * 24 * 3600)
    except signing.BadSignature:
        return None
    return value if isinstance(value, dict) else None


def _posted_resolution(request) -> dict[str, str]:
    """{item_id: mine|theirs} from the conflict panel (「すべて」 buttons fill every conflicting item)."""
    items = [i for i in request.POST.getlist("conflict_items") if len(i) < 200]
    every = request.POST.get("resolve_all", "")
    out = {}
    for item in items:
        choice = every if every in ("mine", "theirs") else request.POST.get(f"resolve::{item}", "")
        if choice in ("mine", "theirs"):
            out[item] = choice
    return out


def _conflict_context(request, exc, notification, extra=()):
    """The page after an EditConflict: merged values on the form, the current version, per field the choice."""
    ctx = _form_context(request, exc.row, exc.merged, None, [("error", str(exc)), *extra], exc.row.lock_version)
    ctx["base_token"] = base_token(exc.row.values)
    ctx["conflicts"] = selectors.conflicts_presented(exc.row, exc.conflicts)
    ctx["conflict"] = True
    return ctx


def _form_context(request, notification, values, evaluation=None, extra_messages=(), lock_version=None,
                  restored=False):
    defn = notification.definition.definition
    shown = present(defn, values, today=services.local_date(), provenance=notification.provenance,
                    evaluation=evaluation)
    evaluation, model = shown.evaluation, shown.model
    items = {item["id"]: item for item in defn.get("items", [])}

    def option_label(item_id, code):
        options = {v.get("code"): v.get("label") for v in items[item_id].get("values", []) or []}
        return options.get(code, code) if isinstance(code, str) else code

    emr_suggestions = [
        {"item": items[key]["label"], "item_id": key, "code": s.get("value"), "value": option_label(key, s.get("value")),
         "reason": s.get("reason") or s.get("reason_ja") or "", "adopted": values.get(key) == s.get("value")}
        for key, s in (notification.suggestions or {}).items() if key in items and isinstance(s, dict)
    ]
    report = (notification.migration_report or {}).get("report")
    emr_changes = selectors.emr_changes_presented(notification, values)
    revisions = selectors.form_revisions(notification)  # delivery status and history from one query
    delivery = selectors.delivery_status(notification, revisions)
    return {
        "form_url": reverse("notifications:form", args=[notification.uuid]),
        "restored": restored,
        "idle_seconds": settings.SESSION_IDLE_SECONDS,
        "base_token": base_token(notification.values),
        "emr_changes": emr_changes,
        "class_report_dates": _class_report_dates(notification, items),
        "change_notice": change_notice(report, defn) if report else [],
        "emr_suggestions": emr_suggestions,
        "notification": notification,
        "form": model,
        "evaluation": evaluation,
        "suggestions": evaluation.suggestions,
        "extra_messages": list(extra_messages),
        "lock_version": lock_version if lock_version is not None else notification.lock_version,
        "delivery": delivery,
        "rejected_items": selectors.rejection_items(notification, delivery),
        "revisions": revisions,
        "can_confirm": request.user.is_physician,
        "physicians": list(selectors.hospital_physicians(notification.hospital_id)),
    }


def _class_report_dates(notification, items) -> list[dict]:
    """Q&A 8: each class with the day it was first reported (shown where a class change is offered)."""
    from .templatetags.ja_format import date_ja

    item = items.get(ids.REPORT_DIAGNOSIS_CLASS) or {}
    labels = {v.get("code"): v.get("label") for v in item.get("values", []) or []}
    return [{"label": labels.get(code, code), "date": date_ja(day)}
            for code, day in (notification.class_report_dates or {}).items()]


def _emr_decision(request, shown: list[int]) -> tuple[list[int], list[int]] | None:
    """The pressed 「反映」/「反映しない」 button: (accept ids, dismiss ids), or None when none was pressed. 「すべて」
    covers the changes the page showed (never one that arrived after the page was rendered)."""
    pressed = request.POST.get("emr", "")
    verb, _, which = pressed.partition(":")
    if verb not in ("accept", "dismiss"):
        return None
    if which == "all":
        chosen = shown
    else:
        chosen = [int(which)] if which.isdigit() and len(which) < 19 else []
    return (chosen, []) if verb == "accept" else ([], chosen)


@staff_required
@require_GET
def notification_list(request):
    """The worklist: each role lands on its own queue (physician 医師確認待ち, clerk 入力中); filters by state and
    「自分の担当」; search by patient ID, name, kana or birth date through the keyed index; pages."""
    state = request.GET.get("state")
    if state is None:
        state = selectors.default_work_state(request.user)
    if state not in {s.value for s in selectors.WorkState}:
        state = ""  # すべて
    mine = request.GET.get("mine") == "1"
    query = request.GET.get("q", "")
    if "\x00" in query or len(query) > 100:
        return HttpResponseBadRequest("検索語が正しくありません（100文字以内）。")
    rows = selectors.worklist(request.user, state=state or None, mine=mine, query=query.strip())
    page = Paginator(rows, settings.WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    audit_record("notification.list", request=request, state=state, mine=mine, searched=bool(query))
    labels = {}
    items = []
    for row in page.object_list:
        if row.definition_id not in labels:
            labels[row.definition_id] = {i["id"]: i.get("label", i["id"]) for i in
                                         row.definition.definition.get("items", [])}
        items.append({"n": row, "state": row.work_state,
                      "state_label": selectors.WORK_STATE_LABELS[selectors.WorkState(row.work_state)],
                      "attention": selectors.attention_of(row),
                      "missing": [labels[row.definition_id].get(i, i) for i in row.missing_priority or []]})
    query_base = urlencode({k: v for k, v in (("state", state), ("mine", "1" if mine else ""), ("q", query)) if v})
    return render(request, "notifications/list.html", {
        "rows": items, "page": page, "state": state, "mine": mine, "query": query, "query_base": query_base,
        "states": [{"value": s.value, "label": selectors.WORK_STATE_LABELS[s]} for s in selectors.WORK_STATES],
        "choices": form_choices(request.user.hospital)})


@staff_required
@require_POST
def notification_start(request):
    """Start a notification by hand (no EMR extract): patient ID and form; the same form, roles and delivery."""
    try:
        notification = services.notification_start_manual(request.user, patient_ref=request.POST.get("patient_id", ""),
                                                           form=request.POST.get("form") or None, request=request)
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc))
    except services.WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("notifications:list") + "?state=")
    return redirect("notifications:form", uuid=notification.uuid)


def _form_page(request, notification):
    """The form page of `notification` (read with `selectors.notification_for_form`): the GET of the form URL and
    the EMR launch's answer (issue 13: the launch opens the form in one round trip, no redirect)."""
    notification = services.notification_migrate_if_needed(notification)  # e.g. a scheduled publish took effect
    kept = selectors.autosave_for_form(notification, request.user)
    if not getattr(notification, "view_audited", False):  # a launch that created it recorded the view with it
        audit_record("notification.view", request=request, obj=notification,
                     restored=len(kept.values) if kept else 0)
    extra = []
    if kept is not None:
        extra.append(("warning", f"保存していない入力（{timezone.localtime(kept.saved_at):%H:%M}時点、{len(kept.values)}項目）を"
                                 "復元しました。「下書き保存」で届出に反映されます。"))
    # a notification created by this request's launch comes with the evaluation of its values (issue 13)
    evaluation = getattr(notification, "evaluation", None) if kept is None else None
    ctx = _form_context(request, notification, autosave.with_autosave(notification.values, kept), evaluation,
                        extra, restored=kept is not None)
    return render(request, "notifications/form.html", ctx)


@staff_required
@require_http_methods(["GET", "POST"])
def notification_form(request, uuid):
    if request.method == "GET":
        return _form_page(request, selectors.notification_for_form(request.user, uuid))

    notification = selectors.notification_get(request.user, uuid)
    action = request.POST.get("action", "save")
    accept = request.POST.get("accept", "")
    try:
        lock_version = int(request.POST.get("lock_version", "0"))
    except ValueError:
        return HttpResponseBadRequest("不正な要求です。")
    shown = [int(v) for v in request.POST.getlist("emr_shown") if v.isdigit() and len(v) < 19]
    post = {k: v for k, v in _post_lists(request).items() if k not in ("emr", "emr_shown")}
    values, parse_errors = parse_form_input(notification.definition.definition, post)
    adopted: tuple[str, ...] = ()
    if accept and not parse_errors:
        values, adopted_item = adopt_suggestion(notification.definition.definition, values, accept)
        adopted = (adopted_item,) if adopted_item else ()
        action = "save"
    decision = _emr_decision(request, shown)
    base = _posted_base(request)
    if parse_errors:
        ctx = _form_context(request, notification, values, None,
                            [("error", m) for m in _texts(parse_errors)], lock_version)
        return render(request, "notifications/form.html", ctx, status=400)
    try:
        if decision is not None:
            row, accepted, dismissed, problems = emr_changes.notification_emr_decide(
                notification, request.user, values, lock_version, accept=decision[0], dismiss=decision[1],
                request=request, base=base)
            autosave.autosave_discard(row, request.user)
            for text in problems:
                messages.error(request, text)
            if accepted:
                messages.success(request, f"電子カルテの変更を{accepted}件反映しました。" + (
                    "確定済みの届出です。内容を確認し、医師が修正を確定してHER-SYSへ送信してください。"
                    if row.status == "confirmed" else ""))
            if dismissed:
                messages.info(request, f"電子カルテの変更を{dismissed}件、反映しないことにしました。")
            return redirect("notifications:form", uuid=row.uuid)
        if action == "confirm_minimum":
            # like the review step's final click: a second factor proven within OTP_RECHECK_MINUTES, or now
            if not otp_verified_recently(request):
                token = request.POST.get("otp_token", "")
                if not (token.strip() and otp_recheck(request, request.user, token)):
                    text = (OTP_RECHECK_FAILURE if token.strip() else
                            "最小限の項目で確定する前に、ワンタイムパスワードをもう一度入力してください"
                            f"（最後の確認から{settings.OTP_RECHECK_MINUTES:g}分以上たっています）。")
                    ctx = _form_context(request, notification, values, None, [("error", text)], lock_version)
                    ctx["minimum_otp_needed"] = True
                    return render(request, "notifications/form.html", ctx, status=400)
            row, evaluation, delivery, missing = minimum.notification_confirm_minimum(
                notification, request.user, values, lock_version, request)
            if delivery is None:
                msgs = [("error", "最小限の項目（Q&A 5）で確定できません。" + (
                    f"未入力の最小限の項目：{'、'.join(missing)}。" if missing else "") + (
                    f"確認が必要な項目が{len(evaluation.errors)}件あります。" if evaluation.errors else "") +
                    "入力した内容は下書きとして保存しました。")]
                if not evaluation.notifiable:
                    msgs = [("error", "この症例は届出の対象外です（対象となる4類型のいずれにも該当しません）。"
                                      "HER-SYSへは送信されません。")]
                return render(request, "notifications/form.html",
                              _form_context(request, row, row.values, evaluation, msgs), status=400)
            autosave.autosave_discard(row, request.user)
            messages.success(request, "最小限の項目で第1報を確定しました。HER-SYSへ送信します。"
                                      "残りの項目が分かったら入力し、「修正を確定する」から内容を確認して続報を送ってください。")
            return redirect("notifications:status", uuid=row.uuid)
        if action == "confirm":  # validate first; if it passes, the review step shows what will be sent
            row, evaluation, ok = services.notification_review_open(notification, request.user, values,
                                                                    lock_version, request)
            if not ok:
                msgs = [("error", f"確定できません。確認が必要な項目が{len(evaluation.errors)}件あります"
                                  "（一覧から各項目へ移動できます）。入力した内容は下書きとして保存しました。")]
                if not evaluation.notifiable:
                    msgs = [("error", "この症例は届出の対象外です（対象となる4類型のいずれにも該当しません）。"
                                      "HER-SYSへは送信されません。")]
                return render(request, "notifications/form.html",
                              _form_context(request, row, row.values, evaluation, msgs), status=400)
            autosave.autosave_discard(row, request.user)  # what was typed is saved as the draft now
            return redirect("notifications:review", uuid=row.uuid)
        if action == "handoff":
            physician_id = ascii_id(request.POST.get("handoff_physician", "") or "0") or None
            row, evaluation = services.notification_handoff(
                notification, request.user, values, lock_version, physician_id=physician_id,
                note=request.POST.get("handoff_note", ""), request=request)
            autosave.autosave_discard(row, request.user)
            messages.success(request, "医師確認待ちにしました。" + (f"{row.review_physician}先生に依頼しました。"
                                                               if row.review_physician else ""))
            return redirect("notifications:list")
        if action == "return":
            row, evaluation = services.notification_return(notification, request.user, values, lock_version,
                                                           note=request.POST.get("return_note", ""), request=request)
            autosave.autosave_discard(row, request.user)
            messages.success(request, "差し戻しました（入力中に戻りました）。")
            return redirect("notifications:list")
        if action == "withdraw":
            row, _ = services.notification_withdraw(notification, request.user, lock_version, request)
            messages.success(request, "取下げを受け付けました。HER-SYSへ送信します。")
            return redirect("notifications:status", uuid=row.uuid)
        resolution = _posted_resolution(request)
        unresolved = [i for i in request.POST.getlist("conflict_items") if i not in resolution]
        if unresolved:
            # the conflict page was saved without a choice for every field that still differs: ask again
            _, differing = services.concurrent_merge(notification, None, values)
            still = [c for c in differing if c["item_id"] in unresolved]
            if still:
                raise services.EditConflict(notification, values, still)
        row, evaluation = services.notification_save(notification, request.user, values, lock_version, request,
                                                     adopted=adopted, base=base, resolved=resolution)
    except services.EditConflict as exc:
        return render(request, "notifications/form.html", _conflict_context(request, exc, notification), status=409)
    except services.ConflictError as exc:
        if action in ("confirm", "confirm_minimum") and base is not None:
            # Confirmed only what the physician saw: what was saved meanwhile is merged into the draft (or the
            # same-field question is asked), and the page asks to review and confirm again.
            try:
                row, _ = services.notification_save(notification, request.user, values, lock_version, request,
                                                    base=base)
            except services.EditConflict as conflict:
                return render(request, "notifications/form.html", _conflict_context(request, conflict, notification),
                              status=409)
            note = ("他の利用者がこの届出を保存していたため、確定していません。その変更を取り込んで下書きとして保存しました。"
                    "内容を確認してから、もう一度確定してください。")
            return render(request, "notifications/form.html",
                          _form_context(request, row, row.values, None, [("error", note)]), status=409)
        ctx = _form_context(request, notification, values, None, [("error", str(exc))], lock_version)
        if base is not None:
            ctx["base_token"] = base_token(base)  # a save from this page merges with what was saved meanwhile
        ctx["conflict"] = True
        return render(request, "notifications/form.html", ctx, status=409)
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc))
    except services.WorkflowError as exc:
        ctx = _form_context(request, notification, values, None, [("error", str(exc))], lock_version)
        return render(request, "notifications/form.html", ctx, status=400)
    autosave.autosave_discard(row, request.user)
    if evaluation.errors:
        messages.warning(request, f"下書きを保存しました。確認が必要な項目が{len(evaluation.errors)}件あります。")
    else:
        messages.success(request, "下書きを保存しました。")
    return redirect("notifications:form", uuid=row.uuid)


@staff_required
@require_http_methods(["GET", "POST"])
def notification_review(request, uuid):
    """The review step of 確定: exactly what will be sent; explicit answers for empty medical items; the physician;
    a recent second factor (asked for here when the last one is older than OTP_RECHECK_MINUTES)."""
    notification = selectors.notification_get(request.user, uuid)
    if not request.user.is_physician:
        raise PermissionDenied("確定できるのは医師のみです。")
    review = services.notification_review(notification, request.user)
    if not review.evaluation.ok_to_confirm or not review.evaluation.notifiable:
        messages.error(request, "確定できない項目があります。入力画面で確認してください。")
        return redirect("notifications:form", uuid=notification.uuid)
    errors = []
    if request.method == "POST":
        answers = {n["id"]: request.POST.get(n["field"], "") for n in review.needs_answer}
        if request.POST.get("answer_rest") == "unknown":  # 「残りをすべて不明」: the items listed without an answer
            answers = {k: v or "unknown" for k, v in answers.items()}
        change_physician = request.POST.get("change_physician") == "1"
        errors = services.review_problems(review, answers, change_physician)
        fresh = otp_verified_recently(request)
        if not fresh:
            token = request.POST.get("otp_token", "")
            if not token.strip():
                errors.append("確定の前にワンタイムパスワードをもう一度入力してください"
                              f"（最後の確認から{settings.OTP_RECHECK_MINUTES:g}分以上たっています）。")
            elif otp_recheck(request, request.user, token):
                fresh = True
            else:
                errors.append(OTP_RECHECK_FAILURE)
        if not errors:
            try:
                lock_version = int(request.POST.get("lock_version", "0"))
            except ValueError:
                return HttpResponseBadRequest("不正な要求です。")
            try:
                row, evaluation, delivery = services.notification_confirm_reviewed(
                    notification, request.user, lock_version=lock_version, digest=request.POST.get("digest", ""),
                    answers=answers, change_physician=change_physician, second_factor_fresh=fresh,
                    second_factor_at=request.session.get(OTP_VERIFIED_AT_KEY), request=request)
            except services.ConflictError as exc:
                messages.error(request, str(exc))
                return redirect("notifications:review", uuid=notification.uuid)
            except services.NotAllowed as exc:
                raise PermissionDenied(str(exc))
            except services.WorkflowError as exc:
                errors.append(str(exc))
            else:
                if delivery is None:
                    return render(request, "notifications/form.html", _form_context(
                        request, row, row.values, evaluation,
                        [("error", f"確定できません。確認が必要な項目が{len(evaluation.errors)}件あります。")]),
                        status=400)
                messages.success(request, "確定しました。HER-SYSへ送信します。")
                return redirect("notifications:status", uuid=row.uuid)
    audit_record("notification.review", request=request, obj=notification)
    return render(request, "notifications/review.html", {
        "notification": notification, "review": review, "errors": errors,
        "needs": [{**n, "answer": request.POST.get(n["field"], "")} for n in review.needs_answer],
        "change_physician": request.POST.get("change_physician") == "1",
        "otp_needed": not otp_verified_recently(request) or bool(errors and request.POST.get("otp_token")),
        "lock_version": notification.lock_version,
        "otp_minutes": f"{settings.OTP_RECHECK_MINUTES:g}"}, status=400 if errors else 200)


@staff_required
@require_POST
def notification_autosave(request, uuid):
    """Autosave as one types (debounced by the page): what differs from the notification is kept for this person
    until they save; nothing of the notification changes."""
    notification = selectors.notification_get(request.user, uuid)
    values, _ = parse_form_input(notification.definition.definition, _post_lists(request))
    names = {k.split("::", 1)[0] for k in request.POST}
    kept = autosave.autosave_store(notification, request.user, values, posted_names=names)
    return JsonResponse({"kept": len(kept.values) if kept else 0,
                         "saved_at": timezone.localtime(kept.saved_at).strftime("%H:%M") if kept else None,
                         "idle_seconds": settings.SESSION_IDLE_SECONDS})


@staff_required
@require_POST
def notification_check(request, uuid):
    """Checks as one leaves a field, from the rules the server runs on save: the posted draft is parsed and
    evaluated exactly as a save would (nothing is stored, logged or audited — the page view was) and the page gets
    each field's messages, what is shown, and the progress panel."""
    notification = selectors.notification_get(request.user, uuid)
    values, parse_errors = parse_form_input(notification.definition.definition, _post_lists(request))
    stage = "confirm" if request.POST.get("stage") == "confirm" else "draft"  # after a confirm attempt: as then
    shown = present(notification.definition.definition, values, today=services.local_date(),
                    provenance=notification.provenance, stage=stage)
    return JsonResponse(check_payload(request, shown.model, parse_errors))


def check_payload(request, model, parse_errors=()) -> dict:
    fields = {}
    for f in iter_fields(model):
        fields[f["html_id"]] = {"messages": [{"severity": m["severity"], "text": m["text_ja"]} for m in f["messages"]],
                                "invalid": f["has_error"], "visible": f["visible"]}
        if f["derived"]:  # e.g. the age, computed again from the birth and diagnosis dates as they change
            fields[f["html_id"]]["derived"] = {"value": f["value"], "unit": f["unit"]}
    for group in (e for s in model["sections"] for e in s["entries"] if e["kind"] == "group"):
        fields[group["html_id"]] = {"messages": [{"severity": m["severity"], "text": m["text_ja"]}
                                                 for m in group["messages"]],
                                    "invalid": group["has_error"], "visible": True}
    progress = render_to_string("notifications/_progress.html", {"form": model}, request=request)
    return {"fields": fields, "progress_html": progress,
            "request_errors": [getattr(e, "text_ja", str(e)) for e in parse_errors]}


def _texts(errors) -> list[str]:
    out = []
    for e in errors:
        out.append(getattr(e, "text_ja", None) or (e.get("text_ja") if isinstance(e, dict) else str(e)))
    return out


@staff_required
@require_GET
def notification_status_page(request, uuid):
    notification = selectors.notification_get(request.user, uuid)
    audit_record("notification.status", request=request, obj=notification)
    delivery = selectors.delivery_status(notification)
    return render(request, "notifications/status.html",
                  {"notification": notification, "delivery": delivery,
                   "rejected_items": selectors.rejection_items(notification, delivery),
                   "fax": selectors.fax_of(notification),
                   "now_local": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})


@staff_required
@require_POST
def notification_fax(request, uuid):
    """「FAXで届出済みとして記録」 and, after it, 「電子送信も行う（保健所と調整済み）」 or 「FAXのみで完了」."""
    from django.utils.dateparse import parse_datetime

    notification = selectors.notification_get(request.user, uuid)
    action = request.POST.get("action", "")
    try:
        if action == "record":
            raw = request.POST.get("sent_at", "").strip()
            try:
                sent_at = parse_datetime(raw) if raw and "\x00" not in raw else None
            except ValueError:
                sent_at = None
            if sent_at is not None and timezone.is_naive(sent_at):
                sent_at = timezone.make_aware(sent_at)
            services.notification_fax_record(notification, request.user, sent_at=sent_at,
                                             health_centre=request.POST.get("health_centre", ""), request=request)
            messages.success(request, "FAXで届出済みとして記録しました。HER-SYSへの電子送信は保留しています。")
        elif action in ("electronic", "fax_only"):
            services.notification_fax_decide(notification, request.user, decision=action, request=request)
            messages.success(request, "電子送信を再開しました。" if action == "electronic"
                             else "FAXのみで完了しました。HER-SYSへは送信しません。")
        else:
            return HttpResponseBadRequest("不正な要求です。")
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc))
    except services.WorkflowError as exc:
        messages.error(request, str(exc))
    return redirect("notifications:status", uuid=notification.uuid)


@staff_required
@require_GET
def notification_status_json(request, uuid):
    notification = selectors.notification_get(request.user, uuid)
    return JsonResponse(selectors.delivery_status(notification))


@staff_required
@require_GET
def notification_print(request, uuid):
    """The official paper form (別記様式) for fax when HER-SYS stays unavailable: the legal duty stays met."""
    notification = selectors.notification_get(request.user, uuid)
    audit_record("notification.print", request=request, obj=notification)
    return render(request, "notifications/print.html",
                  {"notification": notification, "paper": paper_form_for(notification, services.local_date())})


@staff_required
@require_GET
def notification_pdf(request, uuid):
    """The paper form as a PDF (Japanese font embedded) for the hospital's staff: the newest confirmed revision
    with its receipt, or the draft marked 未確定."""
    from django.http import HttpResponse

    from .pdf import paper_pdf

    notification = selectors.notification_get(request.user, uuid)
    if notification.purged_at:
        raise Http404("保存期間を過ぎたため、この届出の内容は消去済みです。")
    paper = paper_form_for(notification, services.local_date())
    audit_record("notification.print", request=request, obj=notification, format="pdf",
                 revision=paper["footer"].get("revision", 0))
    response = HttpResponse(paper_pdf(paper), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="hassei-todoke-{notification.uuid}.pdf"'
    return response


@staff_required
@require_http_methods(["GET", "POST"])
def launch(request, token):
    """The EMR button's one-time URL. It opens the hospital's default form at once — or the form named by
    ``?form=`` — when that needs no choice; a hospital with several forms first gets 「届出様式」 with the default
    preselected (GET shows it, POST with the choice opens the notification; the URL is spent only then)."""
    from assist_portal.formdefs.selectors import forms_for_hospital

    form = (request.POST.get("form") if request.method == "POST" else request.GET.get("form")) or ""
    case = request.POST.get("case", "") if request.method == "POST" else ""
    definition = None
    try:
        if request.method == "GET" and not form:
            # The forms of the user's own hospital (a token of another hospital is refused by the token check
            # either way): with one form the token is not checked a separate time for the form choice, and the
            # definition is chosen once here (issue 13).
            definitions = forms_for_hospital(request.user.hospital)
            if len(definitions) > 1:
                services.launch_token_check(token, request.user, request)
                return render(request, "notifications/launch_choose.html",
                              {"choices": _choices(definitions), "token": token})
            definition = definitions[0] if definitions else None
        notification, question = services.launch_open(token, request.user, request, form=form or None,
                                                      case=case if case in ("same", "new") else None,
                                                      definition=definition, shows_form=request.method == "GET")
        if question is not None:  # Q&A 7: the same case or a new one — asked, never assumed
            return render(request, "notifications/launch_case.html",
                          {**question, **_earlier_summary(question["earlier"]), "token": token,
                           "reopen_days": settings.CASE_REOPEN_DAYS})
        if case in ("same", "new"):
            audit_record("launch.case_choice", request=request, obj=notification, choice=case,
                         suggested=request.POST.get("suggested", "")[:8])
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc))
    except services.WorkflowError as exc:
        return render(request, "notifications/launch_error.html", {"message": str(exc)}, status=400)
    if request.method == "POST":  # a choice was posted: redirect, so that reloading the page posts nothing again
        return redirect("notifications:form", uuid=notification.uuid)
    # The EMR button's GET answers with the form itself (issue 13: one round trip from the hospital terminal, not
    # two); the page names the form URL as canonical and portal.js puts it in the address bar, so a reload or a
    # bookmark opens the form, not the spent launch URL.
    try:
        response = _form_page(request, selectors.launched_for_form(request.user, notification))
    except Exception:  # the launch is committed: never leave the person on a spent URL with an error page
        log.exception("launch: the form page of %s could not be rendered; redirecting to it", notification.uuid)
        return redirect("notifications:form", uuid=notification.uuid)
    # its own requests name only the origin as Referer, never the (spent) launch URL; not "no-referrer": that
    # makes the browser send "Origin: null" with the form's POST, which the CSRF check rightly refuses
    response["Referrer-Policy"] = "strict-origin"
    return response


def _earlier_summary(earlier) -> dict:
    """What the case question shows of the earlier notification: when first reported, its class, its state."""
    from .templatetags.ja_format import date_ja

    items = {i["id"]: i for i in earlier.definition.definition.get("items", [])}
    cls_item = items.get(ids.REPORT_DIAGNOSIS_CLASS) or {}
    labels = {v.get("code"): v.get("label") for v in cls_item.get("values", []) or []}
    first = earlier.revisions.order_by("number").first()
    days = (timezone.now() - earlier.created_at).days
    return {"earlier_class": labels.get((earlier.values or {}).get(ids.REPORT_DIAGNOSIS_CLASS), ""),
            "earlier_reported": date_ja(timezone.localtime(first.confirmed_at)) if first else "",
            "earlier_days": days, "earlier_status": earlier.get_status_display()}


def form_choices(hospital) -> list[dict]:
    """The forms a hospital can open, its default first: [{form, label, version, default}]."""
    from assist_portal.formdefs.selectors import forms_for_hospital

    return _choices(forms_for_hospital(hospital))


def _choices(definitions) -> list[dict]:
    return [{"form": d.form, "label": d.heading, "version": d.version, "default": i == 0}
            for i, d in enumerate(definitions)]


# ---- demo only: the "EMR button" of the demo hospital -------------------------------------------------------------

def _demo_dir() -> Path:
    return settings.BASE_DIR / "demo" / "emr-samples"


def _demo_path(fmt: str, patient_id: str) -> Path:
    if formats.get(fmt).reads_folder:
        return _demo_dir() / fmt / patient_id[:3] / patient_id[3:6] / patient_id
    return _demo_dir() / fmt / f"{patient_id}.json"


def demo_patients() -> list[dict]:
    root = _demo_dir() / formats.FHIR
    out = []
    for path in sorted(root.glob("*.json")) if root.exists() else []:
        out.append({"id": path.stem})
    return out


def _require_demo():
    if not settings.DEMO_MODE:
        raise Http404()


@staff_required
@require_GET
def demo_launcher(request):
    _require_demo()
    return render(request, "notifications/demo_launcher.html",
                  {"patients": demo_patients(), "choices": form_choices(request.user.hospital)})


@staff_required
@require_POST
def demo_launch(request):
    """Does what the hospital connector does (push the extract through the same service) and follows the URL,
    with the form chosen on the launcher (blank: the hospital's default)."""
    _require_demo()
    fmt, _, patient_id = request.POST.get("launch", "").partition(":")
    if not patient_id:
        patient_id, fmt = request.POST.get("patient_id", ""), request.POST.get("format", formats.FHIR)
    if fmt not in formats.FORMATS:
        return render(request, "notifications/launch_error.html", {
            "message": f"未対応の形式です（{' / '.join(formats.FORMATS)} のいずれかを選んでください）。"}, status=400)
    if patient_id not in {p["id"] for p in demo_patients()}:
        raise Http404()
    try:
        data = formats.read_path(fmt, _demo_path(fmt, patient_id))
        if fmt == formats.FHIR:
            data = json.loads(data.decode("utf-8-sig"))
    except (formats.UnknownFormat, OSError):
        raise Http404()
    extract = services.extract_receive(request.user.hospital,
                                       services.ExtractPayload(format=fmt, patient_ref=patient_id, data=data))
    url, _ = services.launch_token_issue(extract)
    target = reverse("notifications:launch", args=[url.rstrip("/").rsplit("/", 1)[-1]])
    form = request.POST.get("form", "")
    if form and form in {c["form"] for c in form_choices(request.user.hospital)}:
        target += "?" + urlencode({"form": form})
    return redirect(target)
