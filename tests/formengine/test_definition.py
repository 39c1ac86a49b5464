"""Definition format: schema + semantic checks, catalog loading, content hash."""
from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vocabulary
from formengine import (
    BUILTIN_VERSIONS,
    DefinitionError,
    builtin_catalog,
    builtin_definition,
    content_hash,
    evaluate,
    load_catalog,
    validate_definition,
)

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = (ROOT / "formengine", ROOT / "vocabulary")


def test_builtin_definitions_are_valid(version):
    defn = builtin_definition(version)
    assert validate_definition(defn) == []
    catalog = builtin_catalog(version)
    assert version == f"{catalog['form']}-{catalog['version']}"
    assert (defn["form"], defn["version"], defn["title"]) == (catalog["form"], catalog["version"], catalog["title"])
    assert [i["id"] for i in defn["items"]] == [i["id"] for i in catalog["items"]]
    assert [(r["id"], r["kind"], r["params"]) for r in defn["rules"]] == [
        (r["id"], r["kind"], r["params"]) for r in catalog["rules"]]
    assert all(r["source"] for r in defn["rules"])  # the original rule text travels with each rule


def test_packages_never_read_shared():
    files = [p for package in PURE_PACKAGES for p in package.rglob("*.py")]
    assert len(files) > 10
    for path in files:
        text = path.read_text("utf-8")
        assert "../shared" not in text and '"shared"' not in text, path


def test_builtin_definition_returns_independent_copies():
    a = builtin_definition("covid19-2022-09")
    a["items"][0]["label"] = "changed"
    assert builtin_definition("covid19-2022-09")["items"][0]["label"] != "changed"


def test_unknown_builtin_version():
    with pytest.raises(DefinitionError, match="2099-01") as info:
        builtin_catalog("covid19-2099-01")
    assert "covid19-2022-09" in str(info.value)  # names what is shipped
    with pytest.raises(DefinitionError, match="2099-01"):
        builtin_definition("2099-01")


def test_a_bare_version_names_the_one_catalog_that_has_it():
    """Legacy callers (the portal's tests, old seed commands) still pass "2021-03"."""
    assert builtin_definition("2021-03") == builtin_definition("covid19-2021-03")


def test_a_raw_catalog_with_english_rule_text_is_refused_with_a_clear_error():
    raw = builtin_catalog("covid19-2021-03")
    raw["catalog"] = "hersys-notification-items"
    raw["rules"] = ["patient.height > 3m => suspicious"]
    with pytest.raises(DefinitionError) as info:
        load_catalog(raw)
    text = str(info.value)
    assert "patient.height > 3m => suspicious" in text
    assert "notification-items/1" in text and "構造化" in text


def test_a_catalog_with_an_unknown_rule_kind_is_refused():
    catalog = builtin_catalog("covid19-2021-03")
    catalog["rules"].append({"id": "x.new_kind", "kind": "guess_the_diagnosis", "params": {}, "severity": "error",
                             "message": "…"})
    with pytest.raises(DefinitionError, match="guess_the_diagnosis"):
        load_catalog(catalog)


def test_a_misspelt_key_in_a_catalog_is_refused():
    catalog = builtin_catalog("covid19-2021-03")
    catalog["items"][3]["visble_when"] = {"item": "patient.sex", "eq": "male"}
    with pytest.raises(DefinitionError, match="visble_when"):
        load_catalog(catalog)


def test_a_catalog_needs_its_envelope():
    catalog = builtin_catalog("covid19-2021-03")
    catalog["item_set"] = ["patient.shoe_size"]
    with pytest.raises(DefinitionError, match="patient.shoe_size"):
        load_catalog(catalog)


#: A small catalog of an invented form: new item ids, new rule texts, only existing rule kinds.
SYNTHETIC: dict = {
    "catalog": "notification-items/1", "form": "demo_measles", "disease": "見本感染症", "version": "2030-01",
    "title": "見本感染症 発生届（2030-01）",
    "source": {"document": "試験用の架空の様式", "issuer": "（なし）", "form": "別記様式0-0", "revision": "2030-01",
               "note": "テスト専用。実在の様式ではない。"},
    "sections": [{"id": "head", "label": "届出"}, {"id": "lab", "label": "検査"}],
    "groups": [{"id": "labs", "label": "検査", "section": "lab", "max": 2, "link_id": "i1_9"}],
    "items": [
        {"id": "head.kind", "label": "類型", "type": "enum", "section": "head",
         "values": [{"code": "case", "label": "患者"}, {"code": "carrier", "label": "無症状病原体保有者"}],
         "required": True, "priority": True, "medical_judgement": True, "link_id": "i1_1"},
        {"id": "head.onset", "label": "発病年月日", "type": "date", "section": "head", "required": False,
         "priority": False, "medical_judgement": True, "link_id": "i1_2"},
        {"id": "head.diagnosed", "label": "診断年月日", "type": "date", "section": "head", "required": True,
         "priority": False, "medical_judgement": True, "link_id": "i1_3"},
        {"id": "head.rash", "label": "発疹", "type": "enum", "section": "head",
         "values": [{"code": "y", "label": "有"}, {"code": "n", "label": "無"}], "required": False,
         "priority": False, "medical_judgement": True, "link_id": "i1_4"},
        {"id": "head.rash_site", "label": "発疹の部位", "type": "text", "section": "head", "required": False,
         "priority": False, "medical_judgement": True, "link_id": "i1_4_1",
         "visible_when": {"item": "head.rash", "eq": "y"}, "max_length": 200},
        {"id": "labs.kind", "label": "検査方法", "type": "enum", "section": "lab", "group": "labs",
         "values": [{"code": "igm", "label": "IgM抗体"}, {"code": "pcr", "label": "PCR"}], "required": False,
         "priority": True, "medical_judgement": False, "link_id": "i1_9_1"},
        {"id": "labs.outcome", "label": "結果", "type": "enum", "section": "lab", "group": "labs",
         "values": [{"code": "pos", "label": "陽性"}, {"code": "neg", "label": "陰性"}], "required": False,
         "priority": True, "medical_judgement": False, "link_id": "i1_9_2"},
    ],
    "rules": [
        {"id": "onset_before_diagnosis", "kind": "date_order", "params": {"chain": ["head.onset", "head.diagnosed"]},
         "severity": "error", "message": "「{a}」は「{b}」以前にしてください。",
         "source": "head.onset <= head.diagnosed"},
        {"id": "case_needs_positive_lab", "kind": "at_least_one",
         "params": {"when": {"item": "head.kind", "eq": "case"}, "group": "labs",
                    "where": {"item": "labs.outcome", "eq": "pos"}, "item": "labs.outcome"},
         "severity": "error", "message": "患者の場合は陽性の検査が1件以上必要です。",
         "source": "head.kind = case => at least one lab with outcome pos"},
        {"id": "labs.max_2", "kind": "max_repeat", "params": {"group": "labs", "max": 2}, "severity": "error",
         "message": "検査は{max}件までです（{count}件）。", "source": "at most 2 labs"},
    ],
    "item_set": ["head.kind", "head.diagnosed"],
    "emr_items": ["head.diagnosed", "labs.kind", "labs.outcome"],
    "changes_from_previous": [],
}


def test_a_new_catalog_with_new_rule_texts_loads_without_code_changes():
    """Rules are data: new ids and new rule sentences need no code, only the existing rule kinds."""
    defn = load_catalog(copy.deepcopy(SYNTHETIC))
    assert defn["form"] == "demo_measles" and defn["version"] == "2030-01"
    assert [r["source"] for r in defn["rules"]] == [r["source"] for r in SYNTHETIC["rules"]]
    today = date(2030, 1, 20)
    row = {"kind": "pcr", "outcome": "neg"}
    bad = evaluate(defn, {"head.kind": "case", "head.onset": "2030-01-12", "head.diagnosed": "2030-01-10",
                          "labs": [row, row, row]}, today=today, stage="confirm")
    assert {m.rule_id for m in bad.errors} >= {"onset_before_diagnosis", "case_needs_positive_lab", "labs.max_2"}
    good = evaluate(defn, {"head.kind": "case", "head.onset": "2030-01-08", "head.diagnosed": "2030-01-10",
                           "head.rash": "n", "labs": [{"kind": "igm", "outcome": "pos"}]}, today=today,
                    stage="confirm")
    assert good.ok_to_confirm, good.messages
    assert "head.rash_site" in good.hidden


def test_link_ids_follow_the_paper_form_and_are_stable_across_versions():
    old, new = builtin_definition("covid19-2021-03"), builtin_definition("covid19-2022-09")
    old_links = {i["id"]: i["link_id"] for i in old["items"]}
    new_links = {i["id"]: i["link_id"] for i in new["items"]}
    assert all(new_links[k] == v for k, v in old_links.items())
    assert new_links["report.report_date"] == "i0_1" and new_links["report.facility_phone"] == "i0_5"
    assert new_links["report.diagnosis_class"] == "i1_1" and new_links["notes.remarks"] == "i1_19"
    assert old["groups"] == [{"id": "tests", "label": "検査", "section": "tests", "max": 4, "link_id": "i1_12"}]


def test_content_hash_is_canonical():
    defn = builtin_definition("covid19-2022-09")
    reordered = json.loads(json.dumps(defn, sort_keys=True))
    assert content_hash(defn) == content_hash(reordered)
    assert len(content_hash(defn)) == 64
    changed = copy.deepcopy(defn)
    changed["items"][0]["label"] += "！"
    assert content_hash(changed) != content_hash(defn)
    assert content_hash(builtin_definition("covid19-2021-03")) != content_hash(defn)


def _broken(mutate) -> list[str]:
    defn = builtin_definition("covid19-2022-09")
    mutate(defn)
    return validate_definition(defn)


def _item(defn, iid):
    return next(i for i in defn["items"] if i["id"] == iid)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["items"].append(copy.deepcopy(d["items"][0])), "項目ID「report.diagnosis_class」が重複"),
    (lambda d: _item(d, "patient.sex").update(link_id="i1_2"), "linkId「i1_2」が重複"),
    (lambda d: _item(d, "patient.sex").update(type="colour"), "形式エラー"),
    (lambda d: _item(d, "patient.sex").update(section="nowhere"), "区分「nowhere」がありません"),
    (lambda d: _item(d, "patient.sex").update(values=[]), "選択肢がありません"),
    (lambda d: _item(d, "patient.sex").update(values=[{"code": "m", "label": "男"}, {"code": "m", "label": "女"}]),
     "選択肢コード「m」が重複"),
    (lambda d: _item(d, "patient.name").update(values=[{"code": "a", "label": "A"}]), "選択肢型ではない"),
    (lambda d: _item(d, "patient.name").update(visible_when={"item": "patient.nothing", "eq": "x"}),
     "項目「patient.nothing」がありません"),
    (lambda d: _item(d, "patient.name").update(visible_when={"item": "patient.sex", "eq": "other"}),
     "選択肢「other」がありません"),
    (lambda d: _item(d, "patient.name").update(visible_when={"any": "labs", "where": {"item": "tests.result",
                                                                                        "eq": "positive"}}),
     "繰り返しグループ「labs」がありません"),
    (lambda d: d["rules"][0]["params"]["chain"].append("clinical.nothing"), "項目「clinical.nothing」がありません"),
    (lambda d: d["rules"][0]["params"]["chain"].append("patient.name"), "型はdate"),
    (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "ルールID「dates.not_future」が重複"),
    (lambda d: d["rules"].append({"id": "x", "kind": "suggest", "severity": "warning", "message": "m", "params": {
        "when": {"item": "patient.age", "gte": 1}, "item": "report.notification_target", "value": "nope",
        "mode": "suggest"}}), "選択肢「nope」がありません"),
    (lambda d: d["rules"].append({"id": "x", "kind": "eval", "severity": "error", "message": "m", "params": {}}),
     "形式エラー"),
    (lambda d: d["rules"].append({"id": "x", "kind": "max_repeat", "severity": "error", "message": "m",
                                  "params": {"group": "tests", "max": 9}}), "枠数（4）を超えています"),
    (lambda d: d["rules"].append({"id": "x", "kind": "required_if", "severity": "error", "message": "m",
                                  "params": {"when": {"item": "patient.age", "lt": 1, "gt": 2}, "items": ["patient.name"]}}),
     "形式エラー"),
    (lambda d: _item(d, "tests.method").update(group="labs"), "グループ「labs」がありません"),
    (lambda d: _item(d, "patient.name").update(id="tests.name"), "繰り返しグループ「tests」の項目と同じ名前"),
])
def test_semantic_problems_are_reported(mutate, expected):
    problems = _broken(mutate)
    assert problems, "expected a problem"
    assert any(expected in p for p in problems), problems


def test_teammate_style_new_item_is_valid():
    defn = builtin_definition("covid19-2022-09")
    defn["items"].append({"id": "patient.nickname", "section": "patient", "type": "text", "label": "呼び名",
                          "required": False, "priority": False, "medical_judgement": False})
    assert validate_definition(defn) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_validate_definition_never_raises(garbage):
    problems = validate_definition(garbage)
    assert isinstance(problems, list) and problems


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["items", "rules", "sections", "groups"]), st.integers(0, 40), json_values)
def test_validate_definition_never_raises_on_mutated_parts(key, index, garbage):
    defn = builtin_definition("covid19-2022-09")
    part = defn[key]
    if part:
        part[index % len(part)] = garbage
    assert isinstance(validate_definition(defn), list)


def test_builtin_versions_are_the_vocabulary_catalog_ids():
    assert BUILTIN_VERSIONS == vocabulary.catalog_ids()
    assert {"covid19-2021-03", "covid19-2022-09"} <= set(BUILTIN_VERSIONS)
