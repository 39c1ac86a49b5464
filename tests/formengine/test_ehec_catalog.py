"""The second real form, 腸管出血性大腸菌感染症 発生届 (別記様式3-3), is data only: its catalog loads into a valid
definition whose rules use the existing rule kinds, it round-trips through a FHIR Questionnaire, and every rule
has a case where it stays quiet and one where it fires. No Django here."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import vocabulary
from formengine import (
    FORMAT,
    DefinitionError,
    evaluate,
    from_questionnaire,
    load_catalog,
    to_questionnaire,
    to_questionnaire_response,
    validate_definition,
)
from formengine.fhir import ITEM_PREFIX

from .conftest import TODAY

CATALOG_FILE = vocabulary.CATALOG_DIR / "ehec-2023-05.json"
URL = "http://hersys-assist.jp/fhir/Questionnaire/ehec"
DEFINITION_KEYS = ("catalog", "disease", "version", "title", "sections", "groups", "items", "rules",
                   "changes_from_previous")


def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


def definition() -> dict[str, Any]:
    """Adapter until formengine.load_catalog reads the enriched format (branch vocab): then it is used as is."""
    raw = catalog()
    try:
        return load_catalog(copy.deepcopy(raw))
    except (DefinitionError, TypeError, KeyError, ValueError):
        defn = {"format": FORMAT, **{k: copy.deepcopy(raw[k]) for k in DEFINITION_KEYS if k in raw}}
        assert validate_definition(defn) == []
        return defn


def covid_catalog() -> dict[str, Any]:
    path = next(p for p in sorted(vocabulary.CATALOG_DIR.glob("*.json")) if "2022-09" in p.name)
    return json.loads(path.read_text(encoding="utf-8"))


#: A complete, consistent EHEC notification (invented patient): O157 VT2 isolated from stool.
BASE: dict[str, Any] = {
    "report.report_date": "2022-10-01",
    "report.physician_name": "岡田　玲子",
    "report.facility_name": "見本総合病院",
    "report.facility_address": "東京都港区芝公園１−５−２",
    "report.facility_phone": "03-1234-5678",
    "report.diagnosis_class": "confirmed_patient",
    "patient.name": "見本　花子",
    "patient.sex": "female",
    "patient.birth_date": "2015-05-10",
    "patient.occupation": "小学生",
    "patient.address": "東京都港区芝公園１−５−２",
    "patient.guardian_name": "見本　太郎",
    "clinical.symptoms": ["abdominal_pain", "watery_diarrhea", "bloody_stool"],
    "ehec.diagnosis_methods": ["isolation_vt"],
    "ehec.vt_confirmation": ["toxin_production", "toxin_gene_pcr"],
    "ehec.specimen": "stool",
    "ehec.o_serogroup": "O157",
    "ehec.h_serogroup": "H7",
    "ehec.verotoxin": "vt2",
    "clinical.estimated_infection_date": "2022-09-24",
    "clinical.onset_date": "2022-09-27",
    "clinical.first_visit_date": "2022-09-28",
    "clinical.diagnosis_date": "2022-09-29",
    "infection.route": "oral",
    "infection.route_certainty": "estimated",
    "infection.food_detail": "9月24日 焼肉店で加熱不十分な牛肉",
    "infection.region": "domestic",
    "infection.region_certainty": "estimated",
    "infection.prefecture": "13",
}


def values(patch: dict[str, Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    for key, value in (patch or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def fired(defn: dict[str, Any], patch: dict[str, Any], rule_id: str) -> bool:
    ev = evaluate(defn, values(patch), today=TODAY, stage="confirm")
    return any(m.rule_id == rule_id for m in ev.messages)


def test_catalog_is_the_enriched_format_and_cites_its_source():
    raw = catalog()
    assert raw["catalog"] == "notification-items/1"
    assert raw["form"] == "ehec" and raw["disease"] == "腸管出血性大腸菌感染症" and raw["version"] == "2023-05"
    assert CATALOG_FILE.name == f"{raw['form']}-{raw['version']}.json"
    source = raw["source"]
    assert set(source) == {"document", "issuer", "form", "revision", "note"}
    assert "健感発第0308001号" in source["document"] and "平成18年3月8日" in source["document"]
    assert "別記様式3-3" in source["form"]
    assert "確認できていない" in source["note"]  # what could not be verified is said plainly
    ids = [item["id"] for item in raw["items"]]
    assert len(ids) == len(set(ids))
    required = {item["id"] for item in raw["items"] if item["required"]}
    assert set(raw["item_set"]) <= required  # the destination never requires what the form lets one omit
    assert set(raw["emr_items"]) <= set(ids)
    assert all(i.split(".")[0] in ("patient", "report") for i in raw["emr_items"])  # demographics/header only
    assert not any(item.get("group") for item in raw["items"])


def test_items_follow_the_paper_form_numbering():
    items = {item["id"]: item for item in catalog()["items"]}
    assert [items[i]["link_id"] for i in ("report.report_date", "report.physician_name", "report.facility_name",
                                         "report.facility_address", "report.facility_phone")] == \
        ["i0_1", "i0_2", "i0_3", "i0_4", "i0_5"]
    assert items["report.diagnosis_class"]["link_id"] == "i1_1"
    assert [v["label"] for v in items["report.diagnosis_class"]["values"]] == [
        "患者（確定例）", "無症状病原体保有者", "感染症死亡者の死体"]  # no 疑似症 for this disease
    assert items["ehec.diagnosis_methods"]["link_id"] == "i1_12"
    assert items["clinical.first_visit_date"]["link_id"] == "i1_13"
    assert items["clinical.death_date"]["link_id"] == "i1_17"
    assert items["notes.remarks"]["link_id"] == "i1_19"
    symptoms = [v["label"] for v in items["clinical.symptoms"]["values"]]
    for label in ("腹痛", "水様性下痢", "血便", "発熱", "溶血性尿毒症症候群（HUS）", "脳症", "その他"):
        assert label in symptoms
    assert {v["code"] for v in items["ehec.o_serogroup"]["values"]} >= {"O157", "O26", "O111", "other"}
    assert [v["label"] for v in items["ehec.verotoxin"]["values"]][:3] == ["VT1・VT2（両方）", "VT1", "VT2"]


def test_shared_items_keep_the_covid_ids_and_meaning():
    covid = {item["id"]: item for item in covid_catalog()["items"]}
    ehec = {item["id"]: item for item in catalog()["items"]}
    shared = set(covid) & set(ehec)
    assert {"report.report_date", "report.diagnosis_class", "patient.name", "patient.sex", "patient.birth_date",
            "patient.age", "patient.address", "clinical.diagnosis_date", "clinical.onset_date",
            "infection.region", "notes.remarks"} <= shared
    for item_id in shared:
        assert ehec[item_id]["type"] == covid[item_id]["type"], item_id
    # Enums with the same id speak the same codes where both forms have the answer.
    for item_id in ("report.diagnosis_class", "patient.sex", "infection.region"):
        covid_codes = {v["code"] for v in covid[item_id]["values"]}
        assert {v["code"] for v in ehec[item_id]["values"]} <= covid_codes


def test_definition_is_valid_and_the_base_case_confirms():
    defn = definition()
    assert validate_definition(defn) == []
    ev = evaluate(defn, values(), today=TODAY, stage="confirm")
    assert ev.ok_to_confirm, [m.text_ja for m in ev.errors]
    assert ev.warnings == []
    assert ev.values["patient.age"] == {"value": 7, "unit": "years"}


def test_hidden_details_follow_their_answers():
    defn = definition()
    ev = evaluate(defn, values({"ehec.diagnosis_methods": ["other"], "ehec.other_method": "LAMP法",
                                "ehec.other_specimen": "便", "ehec.other_result": "陽性",
                                "clinical.symptoms": ["hus"]}), today=TODAY, stage="confirm")
    assert "ehec.o_serogroup" in ev.hidden and "ehec.verotoxin" in ev.hidden
    assert "ehec.other_method" not in ev.hidden


#: rule id -> (quiet patch, firing patch)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dates.not_future": ({}, {"report.report_date": "2022-10-06"}),
    "dates.after_birth": ({"patient.birth_date": "2022-09-24"}, {"patient.birth_date": "2022-09-25"}),
    "dates.infection_onset_diagnosis_report": ({"clinical.estimated_infection_date": "2022-09-27"},
                                               {"clinical.estimated_infection_date": "2022-09-28"}),
    "dates.infection_before_diagnosis": (
        {"clinical.onset_date": None, "clinical.estimated_infection_date": "2022-09-29"},
        {"clinical.onset_date": None, "clinical.estimated_infection_date": "2022-09-30"}),
    "dates.first_visit_diagnosis": ({"clinical.first_visit_date": "2022-09-29"},
                                    {"clinical.first_visit_date": "2022-09-30"}),
    "dates.onset_death": (
        {"report.diagnosis_class": "dead_confirmed", "clinical.death_date": "2022-09-27"},
        {"report.diagnosis_class": "dead_confirmed", "clinical.death_date": "2022-09-26"}),
    "patient.age_derived": ({}, {"patient.birth_date": "2022-09-30", "clinical.diagnosis_date": "2022-09-29"}),
    "death_date.required_if_dead": (
        {"report.diagnosis_class": "dead_confirmed", "clinical.death_date": "2022-09-29"},
        {"report.diagnosis_class": "dead_confirmed"}),
    "onset.expected_for_patients": ({"report.diagnosis_class": "asymptomatic_carrier", "clinical.onset_date": None,
                                     "clinical.symptoms": ["none"]},
                                    {"clinical.onset_date": None}),
    "patient.guardian_expected_if_minor": ({"patient.birth_date": "1980-01-01", "patient.guardian_name": None},
                                           {"patient.guardian_name": None}),
    "diagnosis.isolation_details": ({}, {"ehec.specimen": None}),
    "diagnosis.specimen_other": ({"ehec.specimen": "other", "ehec.specimen_other": "尿"}, {"ehec.specimen": "other"}),
    "diagnosis.o_serogroup_other": ({"ehec.o_serogroup": "other", "ehec.o_serogroup_other": "O103"},
                                    {"ehec.o_serogroup": "other"}),
    "diagnosis.other_method": (
        {"ehec.diagnosis_methods": ["isolation_vt", "other"], "ehec.other_method": "LAMP法",
         "ehec.other_specimen": "便", "ehec.other_result": "陽性"},
        {"ehec.diagnosis_methods": ["isolation_vt", "other"], "ehec.other_method": "LAMP法"}),
    "diagnosis.hus_only_methods": (
        {"ehec.diagnosis_methods": ["serum_antibody"], "clinical.symptoms": ["bloody_stool", "hus"]},
        {"ehec.diagnosis_methods": ["serum_antibody"]}),
    "symptoms.none_alone": ({"report.diagnosis_class": "asymptomatic_carrier", "clinical.symptoms": ["none"]},
                            {"clinical.symptoms": ["none", "fever"]}),
    "symptoms.carrier_has_none": ({"report.diagnosis_class": "asymptomatic_carrier", "clinical.symptoms": ["none"]},
                                  {"report.diagnosis_class": "asymptomatic_carrier"}),
    "symptoms.patient_has_some": ({}, {"clinical.symptoms": ["none"]}),
}


def test_every_rule_has_cases_and_uses_an_existing_kind():
    defn = definition()
    assert {r["id"] for r in defn["rules"]} == set(CASES)
    kinds = {"date_order", "required_if", "expected_if", "at_least_one", "consistency_warning", "derive",
             "max_repeat", "not_notifiable_if_empty", "suggest"}
    assert all(r["kind"] in kinds and r.get("source") for r in defn["rules"])


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_is_quiet_then_fires(rule_id):
    defn = definition()
    quiet, firing = CASES[rule_id]
    assert not fired(defn, quiet, rule_id), rule_id
    assert fired(defn, firing, rule_id), rule_id


def test_hus_only_methods_block_confirmation():
    """届出基準: stool verotoxin or serum antibodies count only for a case with HUS."""
    defn = definition()
    ev = evaluate(defn, values({"ehec.diagnosis_methods": ["stool_vt"]}), today=TODAY, stage="confirm")
    assert not ev.ok_to_confirm
    assert any("HUS" in m.text_ja for m in ev.errors)
    ev = evaluate(defn, values({"ehec.diagnosis_methods": ["stool_vt"],
                                "clinical.symptoms": ["bloody_stool", "hus"]}), today=TODAY, stage="confirm")
    assert ev.ok_to_confirm, [m.text_ja for m in ev.errors]


def test_questionnaire_round_trip_is_lossless_and_follows_the_ig():
    defn = definition()
    q = json.loads(json.dumps(to_questionnaire(defn, url=URL, version="2023-05"), ensure_ascii=False))
    assert from_questionnaire(q) == defn
    header, content = q["item"]
    assert [i["linkId"] for i in header["item"]] == ["i0_1", "i0_2", "i0_3", "i0_4", "i0_5"]
    assert content["item"][0]["linkId"] == "i1_1"
    assert q["url"] == URL and q["version"] == "2023-05"


def test_questionnaire_response_answers_the_item_set():
    defn = definition()
    ev = evaluate(defn, values(), today=TODAY, stage="confirm")
    qr = to_questionnaire_response(defn, ev.values, questionnaire_canonical=f"{URL}|2023-05", status="completed")
    answered: set[str] = set()
    stack = [qr["item"]]
    while stack:
        for item in stack.pop() or []:
            if item.get("answer"):
                answered.add(item["definition"][len(ITEM_PREFIX):])
            stack.append(item.get("item"))
            for answer in item.get("answer", []):
                stack.append(answer.get("item"))
    assert set(catalog()["item_set"]) <= answered
