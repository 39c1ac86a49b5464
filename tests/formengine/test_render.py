"""render_model(): the template-ready structure."""
from __future__ import annotations

import json

from hypothesis import given, settings

from formengine import builtin_definition, evaluate, iter_fields, provenance_badge, render_model

from .conftest import TODAY, base_values, patched
from .test_engine import _values

_fields = iter_fields


def _field(model, name):
    return next(f for f in _fields(model) if f["name"] == name)


def _group(model, gid="tests"):
    return next(e for s in model["sections"] for e in s["entries"] if e["kind"] == "group" and e["id"] == gid)


def _render(values, provenance=None, stage="draft", version="covid19-2022-09"):
    defn = builtin_definition(version)
    ev = evaluate(defn, values, today=TODAY, stage=stage)
    return render_model(defn, ev, provenance or {})


def test_sections_items_and_widgets():
    model = _render(base_values("covid19-2022-09"))
    assert [s["id"] for s in model["sections"]] == ["report", "patient", "clinical", "tests", "infection", "risk",
                                                   "vaccination", "care", "notes"]
    assert _field(model, "patient.sex")["widget"] == "radio"
    assert _field(model, "report.diagnosis_class")["widget"] == "select"
    assert _field(model, "clinical.symptoms")["widget"] == "checkboxes"
    assert _field(model, "patient.birth_date")["widget"] == "date"
    assert _field(model, "patient.phone")["widget"] == "tel"
    assert _field(model, "notes.remarks")["widget"] == "textarea"
    assert _field(model, "patient.age")["widget"] == "age"
    sex = _field(model, "patient.sex")
    assert sex["options"] == [{"code": "male", "label": "男", "selected": False},
                              {"code": "female", "label": "女", "selected": True}]
    assert sex["display"] == "女" and sex["value"] == "female"
    target = _field(model, "report.notification_target")
    assert target["values"] == ["risk_with_treatment"]
    age = _field(model, "patient.age")
    assert age["value"] == "42" and age["unit"] == "years" and age["display"] == "42歳" and age["derived"]
    assert _field(model, "infection.prefecture")["visible"] is False
    shown = _render(patched("covid19-2022-09", {"infection.region": "overseas", "infection.prefecture": "13"}))
    hidden_with_value = _field(shown, "infection.prefecture")
    assert hidden_with_value["visible"] is True and hidden_with_value["hidden_with_value"] is True
    assert hidden_with_value["messages"][0]["rule_id"] == "item.hidden_value"
    assert _field(model, "infection.prefecture")["visible_when"] == {"item": "infection.region", "eq": "domestic"}
    assert len(_field(model, "infection.prefecture")["options"]) == 47


def test_provenance_badges():
    provenance = {"patient.name": "ss-mix2:ADT-00 PID-5", "report.facility_name": "master:facility",
                  "patient.sex": "typed:clerk1", "tests[0].method": "fhir:Observation.code",
                  "patient.age": "typed:clerk1"}
    model = _render(base_values("covid19-2022-09"), provenance)
    assert _field(model, "patient.name")["provenance"] == {
        "kind": "emr", "label_ja": "電子カルテ", "detail": "ss-mix2:ADT-00 PID-5",
        "detail_ja": "電子カルテ：SS-MIX2 患者基本情報（ADT-00）の氏名（PID-5）"}
    assert _field(model, "report.facility_name")["provenance"]["label_ja"] == "医療機関マスタ"
    assert _field(model, "patient.sex")["provenance"]["label_ja"] == "入力"
    assert _field(model, "patient.age")["provenance"] == {
        "kind": "computed", "label_ja": "自動計算", "detail": "computed:patient.age_derived",
        "detail_ja": "「生年月日」と「診断（検案）年月日」から計算"}
    assert _field(model, "tests-0-method")["provenance"]["kind"] == "emr"
    assert _field(model, "patient.occupation")["provenance"]["kind"] == "none"
    assert provenance_badge("weird", True)["kind"] == "typed"
    assert provenance_badge("adopted:dr1", True) == {  # an EMR suggestion chosen with 「採用」
        "kind": "adopted", "label_ja": "候補から採用", "detail": "adopted:dr1",
        "detail_ja": "電子カルテの候補をdr1が採用"}
    assert provenance_badge("adopted:dr1:ss-mix2", True)["detail_ja"] == "電子カルテの候補（SS-MIX2）をdr1が採用"


def test_tests_group_has_four_slots_filled_first():
    row = base_values("covid19-2022-09")["tests"][0]
    model = _render(patched("covid19-2022-09", {"tests": [{}, row, {"method": "antigen_qualitative"}]}))
    group = _group(model)
    assert group["max"] == 4 and len(group["rows"]) == 4 and group["filled_count"] == 2
    assert [r["filled"] for r in group["rows"]] == [True, True, False, False]
    assert _field(model, "tests-0-method")["value"] == "pcr"
    assert _field(model, "tests-1-method")["value"] == "antigen_qualitative"
    assert _field(model, "tests-3-result_date")["value"] == ""
    assert [c["key"] for c in group["columns"]] == ["method", "specimen", "collection_date", "result", "result_date"]


def test_missing_priority_items_are_highlighted():
    model = _render({"patient.name": "見本　太郎"})
    assert _field(model, "patient.sex")["highlight"] is True
    assert _field(model, "patient.name")["highlight"] is False
    assert _field(model, "patient.occupation")["highlight"] is False
    assert _field(model, "tests-0-method")["highlight"] is True  # no test yet: first slot shows what's missing
    assert _field(model, "tests-1-method")["highlight"] is False
    assert _group(model)["highlight"] is True
    anchors = {m["id"]: m["html_id"] for m in model["missing_priority"]}
    assert anchors["patient.sex"] == "f-patient-sex" == _field(model, "patient.sex")["html_id"]
    assert anchors["tests.method"] == "group-tests" == _group(model)["html_id"]


def test_messages_land_on_items_rows_and_form():
    row = {**base_values("covid19-2022-09")["tests"][0], "collection_date": "2022-09-30"}
    values = patched("covid19-2022-09", {"tests": [row], "patient.sex": "x", "report.notification_target": None})
    model = _render(values, stage="confirm")
    assert _field(model, "patient.sex")["has_error"]
    cell = _field(model, "tests-0-result_date")
    assert cell["messages"] and cell["messages"][0]["row"] == 0
    assert any(m["rule_id"] == "target.not_notifiable_if_empty" for m in model["messages"])
    assert model["notifiable"] is False and model["ok_to_confirm"] is False
    sections = {s["id"]: s for s in model["sections"]}
    assert sections["patient"]["has_errors"] and sections["tests"]["has_errors"]


def test_group_level_messages():
    values = patched("covid19-2022-09", {"tests": [{"result": "negative"}]})
    model = _render(values, stage="confirm")
    assert any(m["rule_id"] == "confirmed.needs_positive_test" for m in _group(model)["messages"])


def test_suggestions_in_model():
    model = _render(patched("covid19-2022-09", {"care.hospitalized": "yes"}))
    target = _field(model, "report.notification_target")
    assert target["suggestion"]["value"] == ["hospitalization_required"]


def test_model_is_json_serialisable():
    json.dumps(_render(base_values("covid19-2022-09")), ensure_ascii=False)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_render_never_raises(values):
    model = _render(values)
    json.dumps(model, ensure_ascii=False, default=str)
    assert len(_group(model)["rows"]) >= 4
