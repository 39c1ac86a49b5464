"""parse_form_input(): POSTed fields → values."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formengine import builtin_definition, evaluate, parse_form_input, render_model

from .conftest import TODAY, base_values


class QueryDictLike:
    """The getlist protocol of Django's QueryDict, without Django."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self._data = data

    def getlist(self, key):
        return list(self._data.get(key, []))

    def keys(self):
        return self._data.keys()


def test_fields_become_values():
    defn = builtin_definition("covid19-2022-09")
    post = {
        "patient.name": ["  見本　太郎 "],
        "patient.name_kana": ["ミホン　タロウ"],
        "patient.birth_date": ["１９５０/４/１"],
        "clinical.diagnosis_date": ["2022年9月27日"],
        "patient.phone": ["０３ー１２３４ー５６７８"],
        "patient.postal_code": ["１００−０００１"],
        "vaccination.doses": ["３"],
        "report.notification_target": ["age65_plus", "pregnant", "age65_plus", " "],
        "clinical.symptoms": [],
        "patient.occupation": ["   "],
        "notes.remarks": ["<b>太字</b>　１２３"],
        "tests-0-method": ["pcr"], "tests-0-collection_date": ["2022/9/26"],
        "tests-1-method": [""],
        "tests-2-result": ["positive"],
        "action": ["save"], "lock_version": ["3"],
    }
    values, errors = parse_form_input(defn, post)
    assert errors == []
    assert values == {
        "patient.name": "見本　太郎",
        "patient.name_kana": "ミホン　タロウ",
        "patient.birth_date": "1950-04-01",
        "clinical.diagnosis_date": "2022-09-27",
        "patient.phone": "03-1234-5678",
        "patient.postal_code": "100-0001",
        "vaccination.doses": 3,
        "report.notification_target": ["age65_plus", "pregnant"],
        "notes.remarks": "<b>太字</b>　１２３",  # text is kept as typed
        "tests": [{"method": "pcr", "collection_date": "2022-09-26"}, {"result": "positive"}],
    }
    assert parse_form_input(defn, QueryDictLike(post)) == (values, errors)


@pytest.mark.parametrize("typed", ["2021-01-10", "2021/1/10", "20210110", "R3.1.10", "R3/1/10", "令和3年1月10日",
                                   "２０２１／０１／１０", "ｒ３．１．１０", " 2021年1月10日(日) "])
def test_dates_go_through_the_pages_parser(typed):
    """One parser for page and server: every form /input/date understands is saved as ISO."""
    values, errors = parse_form_input(builtin_definition("2022-09"), {"clinical.onset_date": [typed]})
    assert errors == [] and values == {"clinical.onset_date": "2021-01-10"}


def test_heisei_end_and_a_wrong_era_date():
    defn = builtin_definition("2022-09")
    values, _ = parse_form_input(defn, {"clinical.onset_date": ["H31.4.30"], "patient.birth_date": ["H31.5.1"]})
    assert values == {"clinical.onset_date": "2019-04-30", "patient.birth_date": "H31.5.1"}  # kept as typed
    message = next(m for m in evaluate(defn, values, today=TODAY).errors if m.item_id == "patient.birth_date")
    assert message.text_ja == ("「生年月日」：平成は2019年4月30日までです（2019年5月1日は令和元年5月1日）。"
                               "（入力：H31.5.1）")


@pytest.mark.parametrize(("typed", "saved"), [
    ("やまだ　たろう", "ヤマダ　タロウ"), ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ"), ("ヤマダ  たろう", "ヤマダ　タロウ"),
    ("きょうこ", "キョウコ"),
])
def test_kana_becomes_fullwidth_katakana(typed, saved):
    values, _ = parse_form_input(builtin_definition("2022-09"), {"patient.name_kana": [typed]})
    assert values == {"patient.name_kana": saved}


@pytest.mark.parametrize(("typed", "saved"), [
    ("1000001", "100-0001"), ("〒１００－０００１", "100-0001"), ("100 0001", "100-0001"), ("12-34", "12-34"),
])
def test_postal_codes_take_one_form(typed, saved):
    values, _ = parse_form_input(builtin_definition("2022-09"), {"patient.postal_code": [typed]})
    assert values == {"patient.postal_code": saved}


def test_characters_hersys_cannot_take_are_said_not_dropped():
    defn = builtin_definition("2022-09")
    values, _ = parse_form_input(defn, {"patient.name": ["見本😀太郎"], "patient.occupation": ["𠮷野家"],
                                        "notes.remarks": ["あ" * 4001]})
    assert values["patient.name"] == "見本😀太郎" and len(values["notes.remarks"]) == 4001  # nothing cut
    errors = {m.item_id: m.text_ja for m in evaluate(defn, values, today=TODAY).errors}
    assert errors["patient.name"] == "「当該者氏名」：絵文字は入力できません（😀）。"
    assert "HER-SYSに登録できない文字" in errors["patient.occupation"] and "「𠮷」" in errors["patient.occupation"]
    assert "4000文字以内" in errors["notes.remarks"] and "現在4001文字" in errors["notes.remarks"]


@pytest.mark.parametrize(("typed", "saved"), [
    ("山田 太郎", "山田　太郎"), ("山田　　太郎", "山田　太郎"), (" 山田\t太郎 ", "山田　太郎"), ("山田太郎", "山田太郎"),
])
def test_names_keep_one_full_width_space(typed, saved):
    values, _ = parse_form_input(builtin_definition("2022-09"), {"patient.name": [typed], "patient.guardian_name": [typed],
                                                                 "patient.occupation": ["会社員  営業"]})
    assert values["patient.name"] == saved and values["patient.guardian_name"] == saved
    assert values["patient.occupation"] == "会社員  営業"  # not a name: kept as typed


def test_plain_strings_are_accepted_too():
    values, errors = parse_form_input(builtin_definition("covid19-2021-03"), {"patient.sex": "male"})
    assert values == {"patient.sex": "male"} and errors == []


def test_invalid_values_are_kept_for_evaluate_to_report():
    defn = builtin_definition("covid19-2022-09")
    values, errors = parse_form_input(defn, {"patient.birth_date": ["1980-02-30"], "vaccination.doses": ["三回"]})
    assert errors == []
    assert values == {"patient.birth_date": "1980-02-30", "vaccination.doses": "三回"}
    ev = evaluate(defn, values, today=TODAY)
    assert {m.item_id for m in ev.errors} == {"patient.birth_date", "vaccination.doses"}


def test_age_with_unit():
    defn = builtin_definition("covid19-2022-09")
    values, _ = parse_form_input(defn, {"patient.age": ["７"], "patient.age__unit": ["months"]})
    assert values == {"patient.age": {"value": 7, "unit": "months"}}
    values, _ = parse_form_input(defn, {"patient.age": ["40"], "patient.age__unit": ["decades"]})
    assert values == {"patient.age": {"value": 40, "unit": "years"}}


def test_request_errors():
    defn = builtin_definition("covid19-2022-09")
    values, errors = parse_form_input(defn, {"tests-4-method": ["pcr"], "patient.sex": ["male", "female"],
                                             "patient.name": ["x" * 20001], "tests-0-colour": ["red"]})
    rule_ids = {e.rule_id for e in errors}
    assert rule_ids == {"input.too_many_rows", "input.multiple", "input.too_long", "input.unknown_field"}
    assert values == {"patient.sex": "male", "patient.name": "x" * 20001}  # refused, but never silently dropped
    too_long = next(e for e in errors if e.rule_id == "input.too_long")
    assert too_long.text_ja.startswith("「当該者氏名」が長すぎるため保存していません（現在20001文字、1000文字以内）")
    assert all(e.text_ja for e in errors)


def test_render_then_parse_round_trip():
    defn = builtin_definition("covid19-2022-09")
    values = base_values("covid19-2022-09") | {"clinical.symptoms": ["fever", "other"], "clinical.symptoms_other": "悪寒",
                                       "vaccination.status": "yes", "vaccination.doses": 3}
    ev = evaluate(defn, values, today=TODAY)
    model = render_model(defn, ev, {})
    post: dict[str, list[str]] = {}
    for section in model["sections"]:
        for entry in section["entries"]:
            cells = [entry] if entry["kind"] == "field" else [c for r in entry["rows"] for c in r["cells"]]
            for cell in cells:
                if cell["widget"] == "checkboxes":
                    post[cell["name"]] = cell["values"]
                elif cell["widget"] in ("radio", "select"):
                    post[cell["name"]] = [o["code"] for o in cell["options"] if o["selected"]]
                else:
                    post[cell["name"]] = [cell["value"]]
                    if cell["widget"] == "age":
                        post[cell["name"] + "__unit"] = [cell["unit"]]
    parsed, errors = parse_form_input(defn, post)
    assert errors == []
    assert parsed == ev.values


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["patient.name", "patient.birth_date", "patient.age", "patient.age__unit", "vaccination.doses",
                     "clinical.symptoms", "tests-0-method", "tests-3-collection_date", "tests-9-result",
                     "tests-x-method", "tests-0-", "patient.phone", "junk"]) | st.text(max_size=20),
    st.lists(st.text(max_size=50) | st.sampled_from(["１２", "2022/02/30", "<script>", "\x00", "ー"]), max_size=3),
    max_size=10))
def test_parse_never_raises(post):
    defn = builtin_definition("covid19-2022-09")
    values, errors = parse_form_input(defn, post)
    assert isinstance(values, dict) and isinstance(errors, list)
    evaluate(defn, values, today=TODAY)
