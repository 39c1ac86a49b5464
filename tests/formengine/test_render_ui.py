"""What render_model adds for the people filling the form (issue 10): dates and postal codes shown one way, the
postal code paired with its address, the header, progress, error summary, neutral 未入力 on a fresh form, source
badges in words, spare test rows, items that do not apply folded away."""
from __future__ import annotations

from formengine import builtin_definition, evaluate, iter_fields, render_model

from .conftest import TODAY, base_values

_fields = iter_fields


def field(model, item_id):
    return next(f for f in _fields(model) if f["id"] == item_id)


def render(values, provenance=None, stage="draft", version="2022-09"):
    defn = builtin_definition(version)
    return render_model(defn, evaluate(defn, values, today=TODAY, stage=stage), provenance or {})


def test_dates_are_shown_the_japanese_way_with_the_era_under_the_box():
    birth = field(render(base_values("2022-09")), "patient.birth_date")
    assert birth["value"] == "1980-05-10" and birth["display"] == "1980年5月10日"
    assert birth["understood"] == "1980年5月10日（昭和55年）"
    assert birth["input"]["type"] == "text"  # one text box, not a native date box


def test_postal_codes_are_shown_one_way_and_a_code_from_elsewhere_warns_under_both():
    values = base_values("2022-09") | {"patient.postal_code": "1000001", "patient.address": "広島県広島市中区基町10-1"}
    model = render(values)
    code, address = field(model, "patient.postal_code"), field(model, "patient.address")
    assert code["display"] == "100-0001"
    assert code["address_for"] == "f-patient-address" and address["postal_for"] == "f-patient-postal_code"
    for f in (code, address):
        assert [m["rule_id"] for m in f["messages"]] == ["postal.address_mismatch"]
        assert f["messages"][0]["severity"] == "warning" and not f["has_error"]
    agreeing = render(values | {"patient.address": "東京都千代田区千代田１−１"})
    assert field(agreeing, "patient.postal_code")["messages"] == []


def test_a_fresh_form_says_nothing_is_required_until_someone_tries_to_confirm():
    fresh = render({"patient.name": "見本　太郎"})
    shown = [m for f in _fields(fresh) for m in f["messages"]]
    assert not [m for m in shown if "必須" in m["text_ja"]] and fresh["summary"]["error_count"] == 0
    assert field(fresh, "patient.sex")["provenance"]["label_ja"] == "未入力"  # said neutrally instead
    attempted = render({"patient.name": "見本　太郎"}, stage="confirm")
    sex = field(attempted, "patient.sex")
    assert sex["has_error"] and sex["messages"][0]["text_ja"] == "「性別」は必須です。"
    assert attempted["summary"]["error_count"] == len(evaluate(builtin_definition("2022-09"), {"patient.name": "見本　太郎"},
                                                              today=TODAY, stage="confirm").errors)
    assert {"html_id": "f-patient-sex", "label": "性別", "text_ja": "「性別」は必須です。"} in attempted["summary"]["errors"]
    assert attempted["progress"]["missing_required"] and not fresh["progress"]["missing_required"]


def test_a_date_order_error_sits_under_both_dates_and_is_listed_once():
    values = base_values("2022-09") | {"clinical.onset_date": "2022-09-30"}  # after the diagnosis (09-29)
    model = render(values)
    text = "「発病年月日」は「診断（検案）年月日」と同じ日かそれより前の日付にしてください。"
    for item_id in ("clinical.onset_date", "clinical.diagnosis_date"):
        f = field(model, item_id)
        assert text in [m["text_ja"] for m in f["messages"]] and f["has_error"]
    assert [e["text_ja"] for e in model["summary"]["errors"]].count(text) == 1
    assert model["summary"]["error_count"] == model["progress"]["errors"] == 1


def test_header_progress_and_sources_in_words():
    model = render(base_values("2022-09"), {"patient.name": "ss-mix2:ADT-00 PID-5", "report.report_date": "computed:today"})
    header = model["header"]
    assert header["name"] == "見本　花子" and header["kana"] == "ミホン　ハナコ" and header["version"] == "2022-09"
    assert [(f["label"], f["value"]) for f in header["facts"]] == [
        ("性別", "女"), ("生年月日", "1980年5月10日（昭和55年）"), ("年齢", "42歳")]
    progress = model["progress"]
    assert 0 < progress["filled"] < progress["total"] and progress["errors"] == 0
    assert [s["html_id"] for s in progress["sections"]][:2] == ["section-report", "section-patient"]
    assert field(model, "patient.name")["provenance"]["detail_ja"] == "電子カルテ：SS-MIX2 患者基本情報（ADT-00）の氏名（PID-5）"
    assert field(model, "report.report_date")["provenance"]["detail_ja"] == "届出を開いた日の日付"


def test_empty_test_rows_wait_behind_add_and_filled_ones_never_do():
    model = render(base_values("2022-09"))
    group = next(e for s in model["sections"] for e in s["entries"] if e["kind"] == "group")
    assert [r["spare"] for r in group["rows"]] == [False, True, True, True]
    empty = render({"patient.name": "見本　太郎"})
    group = next(e for s in empty["sections"] for e in s["entries"] if e["kind"] == "group")
    assert [r["spare"] for r in group["rows"]] == [False, True, True, True]  # one empty row to start with


def test_items_that_do_not_apply_are_folded_until_they_do():
    adult = render(base_values("2022-09"))
    assert not field(adult, "patient.guardian_name")["visible"] and not field(adult, "clinical.death_date")["visible"]
    assert field(adult, "clinical.death_date")["visible_when"] == {
        "item": "report.diagnosis_class", "in": ["dead_confirmed", "dead_suspected"]}
    child = render(base_values("2022-09") | {"patient.birth_date": "2015-04-01"})
    assert field(child, "patient.guardian_name")["visible"] and field(child, "patient.guardian_address")["visible"]
    dead = render(base_values("2022-09") | {"report.diagnosis_class": "dead_confirmed"})
    assert field(dead, "clinical.death_date")["visible"]
    typed = render(base_values("2022-09") | {"patient.guardian_name": "見本　一郎"})
    assert field(typed, "patient.guardian_name")["visible"]  # a value is never hidden …
    assert field(typed, "patient.guardian_name")["hidden_with_value"]  # … but it is said that it is not sent
    # The conditions are the catalogs' own (a form is data): the engine applies them like any other.
    for version, adult_age in (("2021-03", 20), ("2022-09", 18)):  # 民法: majority at 20 until 2022-03-31
        defn = builtin_definition(version)
        conditions = {i["id"]: i.get("visible_when") for i in defn["items"]}
        assert conditions["patient.guardian_name"] == conditions["patient.guardian_address"] == {
            "item": "patient.age", "lt": adult_age}
        assert conditions["clinical.death_date"] == {"item": "report.diagnosis_class",
                                                     "in": ["dead_confirmed", "dead_suspected"]}
        assert {"patient.guardian_name", "clinical.death_date"} <= set(
            evaluate(defn, base_values(version), today=TODAY).hidden)
    nineteen = render(base_values("2021-03") | {"patient.birth_date": "2003-06-01"}, version="2021-03")
    assert field(nineteen, "patient.guardian_name")["visible"]  # 19: a minor under the 2021-03 form
    assert not field(render(base_values("2022-09") | {"patient.birth_date": "2003-06-01"}), "patient.guardian_name")["visible"]


def test_a_definitions_own_display_condition_wins():
    defn = builtin_definition("2022-09")
    for item in defn["items"]:
        if item["id"] == "clinical.death_date":
            item["visible_when"] = {"item": "report.diagnosis_class", "eq": "suspected_patient"}
    model = render_model(defn, evaluate(defn, base_values("2022-09") | {"report.diagnosis_class": "suspected_patient"},
                                        today=TODAY), {})
    assert field(model, "clinical.death_date")["visible"]
    assert field(model, "clinical.death_date")["visible_when"] == {"item": "report.diagnosis_class",
                                                                  "eq": "suspected_patient"}


def test_the_change_notice_speaks_plain_japanese_without_ids():
    import dataclasses

    from formengine import migrate_values
    from formengine.render import change_notice

    old, new = builtin_definition("2021-03"), builtin_definition("2022-09")
    _, report = migrate_values(old, new, base_values("2021-03"))
    lines = change_notice(dataclasses.asdict(report), new)
    assert "項目「発生届の対象（届出対象区分）」が加わりました（必須）。" in lines
    assert "自動選択・候補が加わりました：診断時65歳以上のため「65歳以上の者」を選択しました。確認してください。" in lines
    text = "".join(lines)
    for rule in new["rules"]:
        assert rule["id"] not in text
    assert "report.notification_target" not in text and "{" not in text


def test_the_residence_can_be_copied_from_the_address():
    model = render(base_values("2022-09"))
    residence = field(model, "patient.residence_address")
    assert residence["copy_from"] == "f-patient-address" and residence["copy_from_label"] == "当該者住所"
    assert "copy_from" not in field(model, "patient.address")


def test_conditions_and_rules_read_back_in_japanese():
    from formengine.render import condition_in_words, rule_in_words

    defn = builtin_definition("2022-09")
    assert condition_in_words({"item": "patient.age", "lt": 18}, defn) == "「診断時の年齢（0歳は月齢）」が18歳未満"
    assert condition_in_words({"not": {"item": "care.hospitalized", "eq": "no"}}, defn) == \
        "「入院の有無」が「無」でない（未入力を含む）"
    assert condition_in_words({"and": [{"item": "clinical.onset_date", "gte": "2021-01-10"},
                                       {"item": "clinical.symptoms", "includes": "fever"}]}, defn) == \
        "（「発病年月日」が2021年1月10日以後 かつ 「症状」に「発熱」を含む）"
    rules = {r["id"]: r for r in defn["rules"]}
    assert rule_in_words(rules["death_date.required_if_dead"], defn) == (
        "「診断（検案）した者（死体）の類型（診断分類）」が「感染症死亡者の死体」・「感染症死亡疑い者の死体」のいずれかのとき、"
        "「死亡年月日」は必須。［エラー（確定できない）］")
    assert rule_in_words(rules["tests.max_4"], defn) == "「検査」は最大4件。［エラー（確定できない）］"
    for rule in defn["rules"]:
        text = rule_in_words(rule, defn)
        assert "読めません" not in text and rule["id"] not in text and "{" not in text
