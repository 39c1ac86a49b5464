"""Import of the IG authors' Excel layout (workbooks built here with openpyxl)."""
from __future__ import annotations

import io
import json
from datetime import date

import pytest
from openpyxl import Workbook

from formengine import (
    DefinitionError,
    evaluate,
    from_excel_layout,
    to_questionnaire,
    validate_definition,
)

HEADER = ["linkId", "text", "type", "required", "repeats", "answerOption", "enableWhen", "enableBehavior",
          "definition", "maxLength", "maxOccurs", "help", "priority"]


def _workbook(rows, rules=None, meta=None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Questionnaire"
    for key, value in (meta or {
        "#category": "感染症発生届", "#description": "新型コロナウイルス感染症 発生届（見本）", "#sheetID": "covid19",
        "#version": "2024-04", "#name": "COVID19_NOTIFICATION", "#title": "新型コロナウイルス感染症発生届",
        "#status": "active",
    }).items():
        ws.append([key, value])
    ws.append([])
    ws.append(HEADER)
    for row in rows:
        ws.append([row.get(h.lower(), row.get(h)) for h in HEADER])
    if rules:
        rs = wb.create_sheet("rules")
        rs.append(["id", "kind", "params", "severity", "message"])
        for rule in rules:
            rs.append([rule["id"], rule["kind"], json.dumps(rule["params"]), rule["severity"], rule["message"]])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


ROWS = [
    {"linkId": "group_Header", "text": "報告者", "type": "group"},
    {"linkId": "i0_1", "text": "報告年月日", "type": "date", "required": "TRUE"},
    {"linkId": "i0_2", "text": "医師の氏名", "type": "string", "required": "TRUE", "maxLength": 100},
    {"linkId": "group_Content", "text": "届出内容", "type": "group"},
    {"linkId": "i1_1", "text": "類型", "type": "choice", "required": "○", "priority": "TRUE",
     "answerOption": "confirmed:患者（確定例）\nsuspected:疑似症患者\ndead=感染症死亡者の死体",
     "definition": "urn:hersys-assist:item:report.diagnosis_class", "help": "疑似症→確定は編集で"},
    {"linkId": "i1_3", "text": "性別", "type": "choice", "answerOption": "M:男|F:女"},
    {"linkId": "i1_4", "text": "生年月日", "type": "date"},
    {"linkId": "i1_11", "text": "症状", "type": "choice", "repeats": "TRUE", "answerOption": "fever:発熱\nother:その他"},
    {"linkId": "i1_11_1", "text": "症状（その他）", "type": "text", "enableWhen": "i1_11 = other"},
    {"linkId": "i1_12", "text": "検査", "type": "group", "repeats": "TRUE", "maxOccurs": 4},
    {"linkId": "i1_12_1", "text": "検査方法", "type": "choice", "answerOption": "pcr:PCR\nantigen:抗原"},
    {"linkId": "i1_12_2", "text": "検体採取日", "type": "date"},
    {"linkId": "i1_17", "text": "死亡年月日", "type": "date", "enableWhen": "i1_1 = dead\ni1_1 = suspected",
     "enableBehavior": "any"},
    {"linkId": "i1_17_note", "text": "注記", "type": "display"},
    {"linkId": "i1_18", "text": "人数", "type": "integer", "enableWhen": "i1_4 exists"},
]


def test_import_builds_a_valid_definition():
    defn = from_excel_layout(_workbook(ROWS))
    assert validate_definition(defn) == []
    assert defn["version"] == "2024-04" and defn["title"] == "新型コロナウイルス感染症発生届"
    assert [s["id"] for s in defn["sections"]] == ["group_Header", "group_Content"]
    items = {i["link_id"]: i for i in defn["items"]}
    assert items["i0_1"]["required"] is True and items["i0_1"]["section"] == "group_Header"
    assert items["i0_2"]["max_length"] == 100
    cls = items["i1_1"]
    assert cls["id"] == "report.diagnosis_class" and cls["priority"] is True and cls["required"] is True
    assert cls["values"] == [{"code": "confirmed", "label": "患者（確定例）"}, {"code": "suspected", "label": "疑似症患者"},
                             {"code": "dead", "label": "感染症死亡者の死体"}]
    assert cls["help"] == "疑似症→確定は編集で"
    assert items["i1_11"]["type"] == "multi_enum"
    assert items["i1_11_1"]["visible_when"] == {"item": "group_Content.i1_11", "includes": "other"}
    assert items["i1_17"]["visible_when"] == {"or": [{"item": "report.diagnosis_class", "eq": "dead"},
                                                     {"item": "report.diagnosis_class", "eq": "suspected"}]}
    assert items["i1_18"]["visible_when"] == {"item": "group_Content.i1_4", "empty": False}
    assert defn["groups"] == [{"id": "i1_12", "label": "検査", "section": "group_Content", "max": 4,
                               "link_id": "i1_12"}]
    assert items["i1_12_1"]["group"] == "i1_12" and items["i1_12_1"]["id"] == "i1_12.i1_12_1"
    assert "i1_17_note" not in items


def test_imported_definition_works_end_to_end():
    rules = [{"id": "dates.order", "kind": "date_order", "severity": "error", "message": "「{a}」が「{b}」より後です。",
              "params": {"chain": ["group_Content.i1_4", "group_Header.i0_1"]}}]
    defn = from_excel_layout(_workbook(ROWS, rules=rules))
    assert defn["rules"] == rules
    ev = evaluate(defn, {"group_Content.i1_4": "2022-10-02", "group_Header.i0_1": "2022-10-01",
                         "i1_12": [{"i1_12_1": "pcr"}]}, today=date(2022, 10, 5), stage="confirm")
    assert any(m.rule_id == "dates.order" for m in ev.errors)
    q = to_questionnaire(defn, url="http://example.org/q", version="2024-04")
    assert q["item"][1]["linkId"] == "group_Content"


def test_import_from_a_path(tmp_path):
    path = tmp_path / "form.xlsx"
    path.write_bytes(_workbook(ROWS))
    assert from_excel_layout(path)["version"] == "2024-04"
    assert from_excel_layout(str(path))["version"] == "2024-04"


@pytest.mark.parametrize(("rows", "meta", "expected"), [
    ([{"linkId": "i1", "text": "x", "type": "colour"}], None, "type「colour」"),
    ([{"linkId": "i1", "text": "x", "type": "choice"}], None, "選択肢"),
    ([{"linkId": "i1", "text": "x", "type": "string", "enableWhen": "i9 = a"}], None, "enableWhen"),
    ([{"linkId": "i 1", "text": "x", "type": "string"}], None, "使えない文字"),
    ([{"linkId": "i1", "text": "x", "type": "string"}], {"#title": "no version"}, "#version"),
])
def test_import_errors_are_clear(rows, meta, expected):
    with pytest.raises(DefinitionError, match=expected):
        from_excel_layout(_workbook(rows, meta=meta))


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage", "/nonexistent/file.xlsx", 42])
def test_broken_files_raise_definition_error(data):
    with pytest.raises(DefinitionError):
        from_excel_layout(data)


def test_missing_header_row():
    wb = Workbook()
    wb.active.append(["#version", "1"])
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(DefinitionError, match="linkId"):
        from_excel_layout(buf.getvalue())
