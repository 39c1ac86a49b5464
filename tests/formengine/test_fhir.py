"""FHIR: Questionnaire export/import (lossless for our definitions) and QuestionnaireResponse."""
from __future__ import annotations

import copy
import json

import pytest

from formengine import (
    DefinitionError,
    builtin_definition,
    evaluate,
    from_questionnaire,
    to_questionnaire,
    to_questionnaire_response,
    validate_definition,
)
from formengine.fhir import (
    EXT_ITEM,
    EXT_RULE,
    ITEM_PREFIX,
    PROFILE,
    SDC_CALCULATED,
    TARGET_CONSTRAINT,
)

from .conftest import TODAY, base_values

URL = "http://hersys-assist.jp/fhir/Questionnaire/hersys-covid19"


def _walk(items):
    for item in items or []:
        yield item
        yield from _walk(item.get("item"))


def _q(version):
    return to_questionnaire(builtin_definition(version), url=URL, version=version)


def test_round_trip_is_lossless(version):
    defn = builtin_definition(version)
    q = json.loads(json.dumps(to_questionnaire(defn, url=URL, version=version)))  # as stored/sent
    assert from_questionnaire(q) == defn


def test_round_trip_keeps_absent_optional_keys():
    defn = builtin_definition("covid19-2022-09")
    item = next(i for i in defn["items"] if i["id"] == "patient.occupation")
    for key in ("link_id", "required", "priority", "medical_judgement", "hersys_path"):
        item.pop(key)
    defn["sections"][0]["help"] = "説明文"
    assert from_questionnaire(to_questionnaire(defn, url=URL, version="x")) == defn


def test_questionnaire_follows_the_ig(version):
    q = _q(version)
    assert q["resourceType"] == "Questionnaire"
    assert q["meta"]["profile"] == [PROFILE]
    assert q["url"] == URL and q["version"] == version and q["status"] == "active"
    header, content = q["item"]
    assert header["linkId"] == "group_Header" and header["type"] == "group"
    assert [i["linkId"] for i in header["item"]] == ["i0_1", "i0_2", "i0_3", "i0_4", "i0_5"]
    assert content["item"][0]["linkId"] == "i1_1"
    assert all(i["linkId"].startswith(("i1_", "i2_")) for i in content["item"])
    link_ids = [i["linkId"] for i in _walk(q["item"])]
    assert len(link_ids) == len(set(link_ids))
    for item in _walk(q["item"]):
        if item["type"] not in ("display",) and item["linkId"] not in ("group_Header", "group_Content"):
            assert item["definition"].startswith(ITEM_PREFIX)


def test_types_options_required_repeats_and_enable_when():
    q = _q("covid19-2022-09")
    by_def = {i.get("definition", "")[len(ITEM_PREFIX):]: i for i in _walk(q["item"])}
    assert by_def["patient.birth_date"]["type"] == "date"
    assert by_def["patient.name"]["type"] == "string" and by_def["patient.name"]["required"] is True
    assert by_def["vaccination.doses"]["type"] == "integer"
    assert by_def["patient.age"]["type"] == "quantity"
    sex = by_def["patient.sex"]
    assert sex["type"] == "choice"
    assert [o["valueCoding"]["code"] for o in sex["answerOption"]] == ["male", "female"]
    assert sex["answerOption"][0]["valueCoding"]["display"] == "男"
    target = by_def["report.notification_target"]
    assert target["repeats"] is True and target["required"] is True
    tests = by_def["tests"]
    assert tests["type"] == "group" and tests["repeats"] is True
    assert {"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs", "valueInteger": 4} in tests["extension"]
    assert [i["linkId"] for i in tests["item"]] == ["i1_12_1", "i1_12_2", "i1_12_3", "i1_12_4", "i1_12_5"]
    prefecture = by_def["infection.prefecture"]
    assert prefecture["enableWhen"] == [{"question": "i1_18_2", "operator": "=", "answerCoding": {
        "system": "urn:hersys-assist:valueset:infection.region", "code": "domestic", "display": "日本国内"}}]
    assert len(prefecture["answerOption"]) == 47
    admission = by_def["care.admission_date"]  # `not` can't be enableWhen: SDC expression instead
    assert "enableWhen" not in admission
    assert any("enableWhenExpression" in e["url"] for e in admission["extension"])
    help_child = by_def["report.diagnosis_class"]["item"][0]
    assert help_child["type"] == "display" and "Q&A 3" in help_child["text"]
    assert any(e["url"] == SDC_CALCULATED for e in by_def["patient.age"]["extension"])
    assert all(any(e["url"] == EXT_ITEM for e in i["extension"]) for d, i in by_def.items() if d and d != "tests")


def test_rules_are_kept_whole_and_exposed_as_target_constraints():
    defn = builtin_definition("covid19-2022-09")
    q = to_questionnaire(defn, url=URL, version="covid19-2022-09")
    rules = [json.loads(e["valueString"]) for e in q["extension"] if e["url"] == EXT_RULE]
    assert rules == defn["rules"]
    constraints = {next(x["valueId"] for x in e["extension"] if x["url"] == "key"): e
                   for e in q["extension"] if e["url"] == TARGET_CONSTRAINT}
    assert "death-date.required-if-dead" in constraints
    expression = next(x for x in constraints["death-date.required-if-dead"]["extension"] if x["url"] == "expression")
    assert "linkId='i1_17'" in expression["valueExpression"]["expression"]
    assert expression["valueExpression"]["language"] == "text/fhirpath"


def test_foreign_questionnaire_imports_best_effort():
    q = _q("covid19-2022-09")

    def strip(node):
        if isinstance(node, dict):
            if "extension" in node:
                node["extension"] = [e for e in node["extension"] if "hersys-assist.jp" not in e.get("url", "")]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(q)
    defn = from_questionnaire(q)
    assert validate_definition(defn) == []
    assert [s["id"] for s in defn["sections"]] == ["group_Header", "group_Content"]
    assert defn["groups"][0]["max"] == 4
    ids = {i["id"] for i in defn["items"]}
    assert "patient.birth_date" in ids and "report.report_date" in ids
    prefecture = next(i for i in defn["items"] if i["id"] == "infection.prefecture")
    assert prefecture["visible_when"] == {"item": "infection.region", "eq": "domestic"}


@pytest.mark.parametrize("bad", [None, [], {"resourceType": "Patient"}, {"resourceType": "Questionnaire",
                                                                         "item": "nope"}])
def test_from_questionnaire_rejects_garbage(bad):
    with pytest.raises(DefinitionError):
        from_questionnaire(bad)


def test_from_questionnaire_rejects_tampered_extension():
    q = _q("covid19-2021-03")
    q["extension"].append({"url": EXT_RULE, "valueString": "{not json"})
    with pytest.raises(DefinitionError):
        from_questionnaire(q)


def test_questionnaire_response(version):
    defn = builtin_definition(version)
    values = evaluate(defn, base_values(version) | {"clinical.symptoms": ["fever", "cough"]}, today=TODAY,
                      stage="confirm").values
    qr = to_questionnaire_response(defn, values, questionnaire_canonical=f"{URL}|{version}", status="completed")
    assert qr["resourceType"] == "QuestionnaireResponse"
    assert qr["questionnaire"] == f"{URL}|{version}" and qr["status"] == "completed"
    header, content = qr["item"]
    assert header["linkId"] == "group_Header" and content["linkId"] == "group_Content"
    answered = {i["definition"][len(ITEM_PREFIX):]: i for i in _walk(qr["item"]) if "answer" in i}
    for item in answered.values():
        assert item["linkId"] and item["definition"].startswith(ITEM_PREFIX)
    assert answered["report.report_date"]["answer"] == [{"valueDate": "2022-10-01"}]
    assert answered["patient.name"]["answer"] == [{"valueString": "見本　花子"}]
    assert answered["patient.sex"]["answer"] == [{"valueCoding": {
        "system": "urn:hersys-assist:valueset:patient.sex", "code": "female", "display": "女"}}]
    assert [a["valueCoding"]["code"] for a in answered["clinical.symptoms"]["answer"]] == ["fever", "cough"]
    assert answered["patient.age"]["answer"] == [{"valueQuantity": {"value": 42, "unit": "歳",
                                                                   "system": "http://unitsofmeasure.org", "code": "a"}}]
    test_groups = [i for i in content["item"] if i["linkId"] == "i1_12"]
    assert len(test_groups) == 1 and test_groups[0]["definition"] == ITEM_PREFIX + "tests"
    assert {c["definition"] for c in test_groups[0]["item"]} == {ITEM_PREFIX + "tests." + k for k in (
        "method", "specimen", "collection_date", "result", "result_date")}
    if version == "covid19-2022-09":
        assert answered["report.notification_target"]["answer"][0]["valueCoding"]["code"] == "risk_with_treatment"


def test_questionnaire_response_leaves_out_hidden_invalid_and_unknown_values():
    defn = builtin_definition("covid19-2022-09")
    values = base_values("covid19-2022-09") | {"infection.region": "overseas", "infection.prefecture": "13",
                                       "patient.phone": "not a phone", "junk": "<script>", "vaccination.doses": 3}
    qr = to_questionnaire_response(defn, values, questionnaire_canonical=f"{URL}|2022-09", status="amended")
    defs = {i["definition"] for i in _walk(qr["item"]) if "definition" in i}
    assert ITEM_PREFIX + "infection.region" in defs
    assert ITEM_PREFIX + "infection.prefecture" not in defs  # hidden: region is overseas
    assert ITEM_PREFIX + "vaccination.doses" not in defs  # hidden: vaccination status not "yes"
    assert ITEM_PREFIX + "patient.phone" not in defs
    assert not any("junk" in d for d in defs)


def test_questionnaire_response_status_is_checked():
    with pytest.raises(ValueError):
        to_questionnaire_response(builtin_definition("covid19-2022-09"), {}, questionnaire_canonical="x|y", status="done")


def test_to_questionnaire_rejects_invalid_definition():
    defn = copy.deepcopy(builtin_definition("covid19-2022-09"))
    defn["items"][0]["type"] = "colour"
    with pytest.raises(DefinitionError):
        to_questionnaire(defn, url=URL, version="x")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_junk = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.text(max_size=3), max_size=2) \
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["linkId", "type", "definition", "extension", "answerOption",
                                                  "item", "enableWhen", "required", "text", "valueString"]), _junk)
def test_from_questionnaire_on_tampered_input_raises_only_definition_error(seed, key, junk):
    q = _q("covid19-2022-09")
    nodes = [n for n in _walk(q["item"])] + [e for e in q["extension"]]
    node = nodes[seed % len(nodes)]
    node[key] = junk
    try:
        defn = from_questionnaire(q)
    except DefinitionError:
        return
    assert validate_definition(defn) == []


def test_values_read_back_from_a_questionnaire_response(version):
    """The inverse (reconciliation after a restore reads what HER-SYS holds back into values): every value the QR
    carries comes back as it was, repeat rows included; unknown items and garbage are skipped, never raised."""
    from formengine import values_from_questionnaire_response

    defn = builtin_definition(version)
    values = evaluate(defn, base_values(version) | {"clinical.symptoms": ["fever", "cough"]}, today=TODAY,
                      stage="confirm").values
    qr = to_questionnaire_response(defn, values, questionnaire_canonical=f"{URL}|{version}", status="completed")
    back = values_from_questionnaire_response(defn, qr)
    answered = {i["definition"][len(ITEM_PREFIX):] for i in _walk(qr["item"]) if "answer" in i}
    assert back == {k: v for k, v in values.items() if k in answered or k == "tests"}
    assert back["clinical.symptoms"] == ["fever", "cough"] and back["patient.age"] == values["patient.age"]
    assert back["tests"] == values["tests"]
    assert to_questionnaire_response(defn, back, questionnaire_canonical=f"{URL}|{version}",
                                     status="completed") == qr
    junk = {"item": [{"definition": ITEM_PREFIX + "no.such.item", "answer": [{"valueString": "x"}]}, "garbage",
                     {"definition": ITEM_PREFIX + "patient.name", "answer": "not a list"}]}
    assert values_from_questionnaire_response(defn, junk) == {}
    assert values_from_questionnaire_response(defn, None) == {}
