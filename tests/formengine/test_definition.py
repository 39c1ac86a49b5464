"""Definition format: schema + semantic checks, catalog loading, content hash."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formengine import (
    BUILTIN_VERSIONS,
    DefinitionError,
    builtin_catalog,
    builtin_definition,
    content_hash,
    load_catalog,
    validate_definition,
)

PACKAGE = Path(__file__).resolve().parents[2] / "assist_portal" / "formengine"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "hersys"


def test_builtin_definitions_are_valid(version):
    defn = builtin_definition(version)
    assert validate_definition(defn) == []
    assert defn["version"] == version
    catalog = builtin_catalog(version)
    assert [i["id"] for i in defn["items"]] == [i["id"] for i in catalog["items"]]
    assert {r["source"] for r in defn["rules"]} == set(catalog["rules"])


@pytest.mark.skipif(not SHARED.exists(), reason="../shared not available")
def test_shipped_catalogs_are_copies_of_shared(version):
    assert builtin_catalog(version) == json.loads((SHARED / f"items-{version}.json").read_text("utf-8"))


def test_package_never_reads_shared():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text("utf-8")
        assert "../shared" not in text and '"shared"' not in text, path


def test_builtin_definition_returns_independent_copies():
    a = builtin_definition("2022-09")
    a["items"][0]["label"] = "changed"
    assert builtin_definition("2022-09")["items"][0]["label"] != "changed"


def test_unknown_builtin_version():
    with pytest.raises(DefinitionError, match="2099-01"):
        builtin_catalog("2099-01")


def test_unknown_rule_text_raises_clear_error():
    catalog = builtin_catalog("2021-03")
    catalog["rules"].append("patient.height > 3m => suspicious")
    with pytest.raises(DefinitionError) as info:
        load_catalog(catalog)
    assert "patient.height > 3m => suspicious" in str(info.value)
    assert "RULE_TABLE" in str(info.value)


def test_link_ids_follow_the_paper_form_and_are_stable_across_versions():
    old, new = builtin_definition("2021-03"), builtin_definition("2022-09")
    old_links = {i["id"]: i["link_id"] for i in old["items"]}
    new_links = {i["id"]: i["link_id"] for i in new["items"]}
    assert all(new_links[k] == v for k, v in old_links.items())
    assert new_links["report.report_date"] == "i0_1" and new_links["report.facility_phone"] == "i0_5"
    assert new_links["report.diagnosis_class"] == "i1_1" and new_links["notes.remarks"] == "i1_19"
    assert old["groups"] == [{"id": "tests", "label": "検査", "section": "tests", "max": 4, "link_id": "i1_12"}]


def test_content_hash_is_canonical():
    defn = builtin_definition("2022-09")
    reordered = json.loads(json.dumps(defn, sort_keys=True))
    assert content_hash(defn) == content_hash(reordered)
    assert len(content_hash(defn)) == 64
    changed = copy.deepcopy(defn)
    changed["items"][0]["label"] += "！"
    assert content_hash(changed) != content_hash(defn)
    assert content_hash(builtin_definition("2021-03")) != content_hash(defn)


def _broken(mutate) -> list[str]:
    defn = builtin_definition("2022-09")
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
    defn = builtin_definition("2022-09")
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
    defn = builtin_definition("2022-09")
    part = defn[key]
    if part:
        part[index % len(part)] = garbage
    assert isinstance(validate_definition(defn), list)


def test_builtin_versions_listed():
    assert BUILTIN_VERSIONS == ("2021-03", "2022-09")
