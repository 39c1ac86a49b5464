"""Central admin UI: form definitions (draft → edit → preview → diff → publish) and delivery monitoring.
No patient data is shown here."""
from __future__ import annotations

import copy
import json
from datetime import date

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assist_portal.accounts.admin_services import hospital_mapping_update
from assist_portal.accounts.admin_views import account_admin
from assist_portal.accounts.decorators import admin_required
from assist_portal.accounts.models import Hospital
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.selectors import deliveries_for_monitor, pending_by_hospital
from assist_portal.delivery.services import delivery_redrive, delivery_resume
from assist_portal.formdefs import selectors, services
from assist_portal.formdefs.catalogs import builtin_catalogs
from assist_portal.formdefs.models import FormAssignment, FormDefinition
from assist_portal.formdefs.selectors import item_set_version
from assist_portal.inputs import ascii_ids, bad_request, iso_datetime
from assist_portal.notifications.services import hospital_csv_profile
from formengine import (
    DefinitionError,
    diff_definitions,
    from_excel_layout,
    from_questionnaire,
    present,
    to_questionnaire,
)
from hersys_client import questionnaire_canonical
from vocabulary import ids

from . import services as central_services

ITEM_FLAGS = ("required", "priority", "medical_judgement")
MAX_UPLOAD = 5 * 1024 * 1024

# Invented sample values for the preview (no real patient).
PREVIEW_VALUES = {
    ids.REPORT_DIAGNOSIS_CLASS: "confirmed_patient", ids.PATIENT_NAME: "見本　太郎", ids.PATIENT_NAME_KANA: "ミホン　タロウ",
    ids.PATIENT_SEX: "male", ids.PATIENT_BIRTH_DATE: "1950-04-01", ids.PATIENT_ADDRESS: "東京都千代田区千代田１−１",
    ids.PATIENT_POSTAL_CODE: "1000001", ids.CLINICAL_DIAGNOSIS_DATE: "2022-09-27", ids.REPORT_REPORT_DATE: "2022-09-27",
    ids.CARE_HOSPITALIZED: "yes", ids.CARE_ADMISSION_DATE: "2022-09-27",
    ids.TESTS: [{"method": "pcr", "specimen": "nasopharyngeal_swab", "collection_date": "2022-09-26",
                 "result": "positive", "result_date": "2022-09-27"}],
}
PREVIEW_PROVENANCE = {ids.PATIENT_NAME: "ss-mix2:ADT-00 PID-5", ids.PATIENT_BIRTH_DATE: "fhir:Patient.birthDate",
                      ids.REPORT_REPORT_DATE: "computed:today", ids.CARE_HOSPITALIZED: "ss-mix2:ADT-22 PV1-2"}


def _definition(pk) -> FormDefinition:
    return get_object_or_404(FormDefinition, pk=pk)


def _draft(pk) -> FormDefinition:
    row = _definition(pk)
    if row.is_published:
        raise Http404("公開済みの定義は編集できません")
    return row


@admin_required
@require_GET
def definition_list(request):
    current = selectors.definitions_current_for_all()
    labels = selectors.form_labels()
    return render(request, "central/list.html", {
        "definitions": FormDefinition.objects.all()[:100],
        "assignments": FormAssignment.objects.select_related("definition", "hospital")[:100],
        "current": current,
        "current_ids": {d.pk for d in current},
        "builtin_catalogs": builtin_catalogs(),
        "form_options": [(f, labels.get(f, f)) for f in selectors.forms_known()],
    })


def _fail(request, exc, target):
    messages.error(request, f"保存できませんでした：{exc}")
    return redirect(*target)


@admin_required
@require_POST
def definition_new(request):
    """Create a draft: a copy of a definition, a shipped catalog, a FHIR Questionnaire or an Excel-layout form."""
    source = request.POST.get("source", "copy")
    try:
        if source == "builtin":
            catalog_id = request.POST.get("catalog") or request.POST.get("version", "")
            row = services.definition_import_builtin(catalog_id, user=request.user, request=request)
        elif source in ("questionnaire", "excel"):
            upload = request.FILES.get("file")
            if upload is None or upload.size > MAX_UPLOAD:
                raise DefinitionError("ファイルを選択してください（5MBまで）。")
            data = upload.read()
            defn = from_questionnaire(json.loads(data.decode("utf-8"))) if source == "questionnaire" \
                else from_excel_layout(data)
            form = request.POST.get("form", "").strip() or (selectors.forms_known() or [None])[0]
            row = services.definition_create(defn, user=request.user, form=form,
                                             version=request.POST.get("label") or None, request=request)
        else:
            base_pk = request.POST.get("base") or getattr(next(iter(selectors.definitions_current_for_all()), None),
                                                          "pk", 0)
            base = _definition(base_pk if str(base_pk).isdigit() else 0)
            row = services.definition_create(copy.deepcopy(base.definition), user=request.user, based_on=base,
                                             version=f"{base.version}-draft-{timezone.now():%Y%m%d%H%M%S}",
                                             request=request)
    except (DefinitionError, ValueError, UnicodeDecodeError) as exc:
        return _fail(request, exc, ("central:list",))
    except RecursionError:
        return _fail(request, "JSONの入れ子が深すぎます。", ("central:list",))
    messages.success(request, f"下書き「{row.version}」（{row.heading}）を作成しました。")
    return redirect("central:detail", pk=row.pk)


@admin_required
@require_GET
def definition_detail(request, pk):
    row = _definition(pk)
    base = selectors.definition_diff_base(row)
    changes = diff_definitions(base.definition, row.definition) if base else []
    return render(request, "central/detail.html", {
        "d": row, "defn": row.definition, "base": base, "changes": changes,
        "hospitals": Hospital.objects.filter(is_active=True).order_by("code"),
        "rules_json": json.dumps(row.definition.get("rules", []), ensure_ascii=False, indent=1),
        "item_set_version": item_set_version(row),
    })


@admin_required
@require_POST
def definition_rename(request, pk):
    row = _draft(pk)
    try:
        services.definition_rename(row, version=request.POST.get("version", ""), user=request.user, request=request)
    except DefinitionError as exc:
        return _fail(request, exc, ("central:detail", row.pk))
    return redirect("central:detail", pk=row.pk)


def _find_item(defn: dict, item_id: str) -> dict:
    for item in defn.get("items", []):
        if item.get("id") == item_id:
            return item
    raise Http404("項目が見つかりません")


def _parse_values(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if "=" not in line:
            raise DefinitionError(f"選択肢は「コード=ラベル」の形で1行に1つ書いてください：{line}")
        code, label = (part.strip() for part in line.split("=", 1))
        out.append({"code": code, "label": label})
    return out


@admin_required
@require_http_methods(["GET", "POST"])
def item_edit(request, pk, item_id=None):
    row = _draft(pk)
    defn = copy.deepcopy(row.definition)
    item = _find_item(defn, item_id) if item_id else None
    if request.method == "POST":
        try:
            if item is None:
                new_id = request.POST.get("id", "").strip()
                if not new_id:
                    raise DefinitionError("項目IDを入力してください。")
                item = {"id": new_id, "section": request.POST.get("section", ""),
                        "type": request.POST.get("type", "text")}
                defn.setdefault("items", []).append(item)
            item["label"] = request.POST.get("label", "").strip()
            for key in ("help", "emr_source"):
                value = request.POST.get(key, "").strip()
                if value:
                    item[key] = value
                else:
                    item.pop(key, None)
            for flag in ITEM_FLAGS:
                item[flag] = request.POST.get(flag) == "on"
            if item.get("type") in ("enum", "multi_enum"):
                item["values"] = _parse_values(request.POST.get("values", ""))
            visible = request.POST.get("visible_when", "").strip()
            if visible:
                try:
                    item["visible_when"] = json.loads(visible)
                except RecursionError:
                    raise DefinitionError("JSONの入れ子が深すぎます。")
            else:
                item.pop("visible_when", None)
            services.definition_update_draft(row, defn, user=request.user, request=request)
        except (DefinitionError, ValueError) as exc:
            return render(request, "central/item_edit.html",
                          {"d": row, "item": item or {}, "error": str(exc), "post": request.POST,
                           "sections": defn.get("sections", [])}, status=400)
        messages.success(request, "項目を保存しました。")
        return redirect("central:detail", pk=row.pk)
    values_text = "\n".join(f"{v['code']}={v['label']}" for v in (item or {}).get("values", []))
    return render(request, "central/item_edit.html", {
        "d": row, "item": item or {}, "values_text": values_text, "sections": defn.get("sections", []),
        "visible_json": json.dumps(item.get("visible_when"), ensure_ascii=False) if item and item.get("visible_when") else "",
    })


@admin_required
@require_POST
def rules_edit(request, pk):
    row = _draft(pk)
    defn = copy.deepcopy(row.definition)
    try:
        try:
            rules = json.loads(request.POST.get("rules", ""))
        except RecursionError:
            raise DefinitionError("JSONの入れ子が深すぎます。")
        if not isinstance(rules, list):
            raise DefinitionError("ルールはJSONの配列で入力してください。")
        defn["rules"] = rules
        services.definition_update_draft(row, defn, user=request.user, request=request)
    except (DefinitionError, ValueError) as exc:
        return _fail(request, exc, ("central:detail", row.pk))
    messages.success(request, "ルールを保存しました。")
    return redirect("central:detail", pk=row.pk)


@admin_required
@require_GET
def definition_preview(request, pk):
    row = _definition(pk)
    known = {i.get("id") for i in row.definition.get("items", [])} | {
        g.get("id") for g in row.definition.get("groups", []) or []}
    sample = {k: v for k, v in PREVIEW_VALUES.items() if k in known}  # only this form's items
    shown = present(row.definition, sample, today=date.today(), provenance=PREVIEW_PROVENANCE, stage="confirm")
    return render(request, "central/preview.html", {"d": row, "form": shown.model, "evaluation": shown.evaluation})


@admin_required
@require_POST
def definition_publish_view(request, pk):
    row = _draft(pk)
    scope = request.POST.get("scope", "all")
    ids = ascii_ids(request.POST.getlist("hospitals"))
    if ids is None:
        return _fail(request, "対象の医療機関の指定が正しくありません。", ("central:detail", row.pk))
    hospitals = list(Hospital.objects.filter(pk__in=ids)) if scope == "subset" else None
    if scope == "subset" and not hospitals:
        return _fail(request, "対象の医療機関を選んでください。", ("central:detail", row.pk))
    effective = request.POST.get("effective_from", "").strip()
    effective_from = None
    if effective:
        effective_from = iso_datetime(effective)
        if effective_from is None:
            return _fail(request, "適用開始日時の形式が正しくありません。", ("central:detail", row.pk))
    try:
        central_services.definition_publish(row, user=request.user, hospitals=hospitals,
                                            effective_from=effective_from, request=request)
    except DefinitionError as exc:
        return _fail(request, exc, ("central:detail", row.pk))
    target = "、".join(h.name for h in hospitals) if hospitals else "全医療機関"
    messages.success(request, f"「{row.heading}」の版「{row.version}」を公開し、{target}に割り当てました。")
    return redirect("central:detail", pk=row.pk)


@admin_required
@require_GET
def definition_questionnaire(request, pk):
    row = _definition(pk)
    url = questionnaire_canonical(row.form, item_set_version(row)).split("|", 1)[0]  # one canonical per form
    q = to_questionnaire(row.definition, url=url, version=item_set_version(row))
    response = JsonResponse(q, json_dumps_params={"ensure_ascii": False, "indent": 1})
    response["Content-Disposition"] = f'attachment; filename="questionnaire-{row.pk}.json"'
    return response


@admin_required
@require_GET
def delivery_monitor(request):
    status = request.GET.get("status", "")
    if status and status not in Delivery.Status.values:
        return bad_request(request, "送信状態の指定が正しくありません。")
    counts = [(s, label, Delivery.objects.filter(status=s).count()) for s, label in Delivery.Status.choices]
    return render(request, "central/deliveries.html", {
        "deliveries": deliveries_for_monitor(status), "status": status, "counts": counts,
        "by_hospital": pending_by_hospital()})


@admin_required
@require_POST
def delivery_resume_view(request, pk):
    delivery = get_object_or_404(Delivery, pk=pk)
    if delivery_resume(delivery, request.user, request):
        messages.success(request, f"送信 {delivery.pk} を今すぐ再送するよう指示しました。")
    else:
        messages.error(request, f"送信 {delivery.pk} は送信中か完了済みのため、再送の指示は不要です。")
    return redirect("central:deliveries")


@admin_required
@require_POST
def delivery_redrive_view(request, pk):
    delivery = get_object_or_404(Delivery, pk=pk, status=Delivery.Status.DEAD)
    delivery_redrive(delivery, request.user, request)
    messages.success(request, "再送を開始しました。")
    return redirect("central:deliveries")


def _json_field(text: str):
    try:
        return json.loads(text or "{}")
    except RecursionError:
        raise ValueError("JSONの入れ子が深すぎます。")


@admin_required
@require_GET
def hospital_list(request):
    hospitals = list(Hospital.objects.order_by("code"))
    rows = [{"hospital": h, "forms": selectors.forms_for_hospital(h), "default": selectors.hospital_default_form(h)}
            for h in hospitals]
    return render(request, "central/hospitals.html", {"rows": rows})


@admin_required
@require_POST
def hospital_default_form(request, pk):
    """Set the form a hospital's notifications open with (blank: the form it was first assigned)."""
    hospital = get_object_or_404(Hospital, pk=pk)
    try:
        services.hospital_default_form_set(hospital, request.POST.get("default_form", ""), user=request.user,
                                           request=request)
    except DefinitionError as exc:
        return _fail(request, exc, ("central:hospitals",))
    chosen = selectors.hospital_default_form(hospital) or "なし"
    label = selectors.form_labels().get(chosen, chosen)
    messages.success(request, f"{hospital.name}の既定の届出様式を「{label}」にしました。")
    return redirect("central:hospitals")


@admin_required
@require_http_methods(["GET", "POST"])
def hospital_mapping(request, pk):
    """Central admins edit a hospital's mapping tables (local lab/specimen codes, DWH column profile) once."""
    hospital = get_object_or_404(Hospital, pk=pk)
    error = ""
    codes_text = json.dumps(hospital.local_codes, ensure_ascii=False, indent=1)
    profile_text = json.dumps(hospital_csv_profile(hospital) or {}, ensure_ascii=False, indent=1)
    if request.method == "POST":
        codes_text = request.POST.get("local_codes", "")
        profile_text = request.POST.get("csv_profile", "")
        try:
            hospital_mapping_update(hospital, local_codes=_json_field(codes_text), csv_profile=_json_field(profile_text),
                                    user=request.user, request=request)
        except ValueError as exc:
            error = f"保存できませんでした：{exc}"
        else:
            messages.success(request, "対応表を保存しました。次に受け付ける抽出データから使われます。")
            return redirect("central:hospital-mapping", pk=hospital.pk)
    return render(request, "central/hospital_mapping.html", {
        "hospital": hospital, "codes_text": codes_text, "profile_text": profile_text, "error": error},
        status=400 if error else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def user_admin(request):
    """Administrator accounts (hospital administrators, central admins): create (one-time password shown once;
    the holder enrols TOTP at first sign-in), reset a lost authenticator and unlock. Never physicians or clerks:
    see accounts.admin_services."""
    return account_admin(request, template="central/users.html", page="central:users")
