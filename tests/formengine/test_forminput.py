"""parse_form_input(): POSTed fields → values."""
from __future__ import annotations

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
    assert values == {"patient.sex": "male"}
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
