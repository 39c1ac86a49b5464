"""build_document_bundle: contract shape (contracts.md §3), JP Core Patient, data minimisation, determinism."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest

from hersys_client import build_document_bundle
from hersys_client.bundle import EN_REPRESENTATION, IDENTIFIER_SYSTEM, MEDICAL_INSTITUTION_CODE_SYSTEM
from hersys_client.sandbox.validation import validate_bundle

from .factories import FACILITY, ITEMS, make_bundle, make_qr


def resources(bundle: dict) -> dict[str, dict]:
    return {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}


def test_document_bundle_shape() -> None:
    bundle = make_bundle("0b5c1c5e-7d4a-4b7a-9a55-9f1f3d0f0b11", revision=3, status="amended")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
    assert bundle["identifier"] == {"system": IDENTIFIER_SYSTEM, "value": "0b5c1c5e-7d4a-4b7a-9a55-9f1f3d0f0b11"}
    assert bundle["meta"]["versionId"] == "3"
    assert bundle["timestamp"] == "2022-10-01T00:00:00+09:00"
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types == ["Composition", "Patient", "Practitioner", "Organization", "QuestionnaireResponse"]
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(u.startswith("urn:uuid:") for u in urls) and len(set(urls)) == len(urls)
    # Every reference points inside the Bundle.
    refs = [ref for ref in _references(bundle)]
    assert refs and set(refs) <= set(urls)
    qr = resources(bundle)["QuestionnaireResponse"]
    assert qr["status"] == "amended"
    assert qr["questionnaire"].endswith("|2022-09")
    assert validate_bundle(bundle, ["2022-09"])[1] == []


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


@pytest.mark.parametrize("status", ["completed", "amended", "stopped"])
def test_questionnaire_response_status_follows_the_revision_kind(status: str) -> None:
    qr = resources(make_bundle(status=status))["QuestionnaireResponse"]
    assert qr["status"] == status


def test_patient_is_jp_core_with_kanji_and_kana_names() -> None:
    items = {**ITEMS, "patient.name": "高橋　健"}  # full-width space, as typed on Japanese keyboards
    patient = resources(make_bundle(items=items))["Patient"]
    kanji, kana = patient["name"]
    assert kanji["extension"] == [{"url": EN_REPRESENTATION, "valueCode": "IDE"}]
    assert (kanji["text"], kanji["family"], kanji["given"]) == ("高橋　健", "高橋", ["健"])
    assert kana["extension"][0]["valueCode"] == "SYL" and kana["family"] == "タカハシ"
    assert patient["gender"] == "male" and patient["birthDate"] == "1942-07-21"
    assert patient["address"] == [{"text": ITEMS["patient.address"], "postalCode": "4600008", "country": "JP"}]
    assert patient["telecom"] == [{"system": "phone", "value": "092-8784-3725", "use": "home"}]


def test_name_without_space_is_kept_whole_not_guessed() -> None:
    patient = resources(make_bundle(items={**ITEMS, "patient.name": "高橋健"}))["Patient"]
    assert patient["name"][0]["text"] == "高橋健"
    assert "family" not in patient["name"][0]


def test_practitioner_and_organization() -> None:
    res = resources(make_bundle())
    assert res["Practitioner"]["name"][0]["text"] == "山田 太郎"
    org = res["Organization"]
    assert org["name"] == FACILITY["name"] and org["address"][0]["text"] == FACILITY["address"]
    assert org["identifier"][0]["value"] == "H0001"
    national = build_document_bundle(notification_id="n", revision=1, status="completed",
                                     questionnaire_response=make_qr(ITEMS), items=ITEMS,
                                     facility={**FACILITY, "code": "2312345678"}, today=date(2022, 10, 1))
    assert resources(national)["Organization"]["identifier"][0]["system"] == MEDICAL_INSTITUTION_CODE_SYSTEM


def test_only_hersys_items_leave_the_data_centre() -> None:
    items = {**ITEMS, "emr.patient_id": "MRN-0042-SECRET", "internal.note": "院内メモ-SECRET"}
    qr = make_qr(ITEMS)
    qr["extension"] = [{"url": "urn:x", "valueString": "EXT-SECRET"}]
    qr["contained"] = [{"resourceType": "Patient", "id": "CONTAINED-SECRET"}]
    qr["item"][0]["item"][0]["extension"] = [{"url": "urn:x", "valueString": "ITEM-SECRET"}]
    facility = {**FACILITY, "director": "DIRECTOR-SECRET", "bank_account": "BANK-SECRET"}
    bundle = build_document_bundle(notification_id="n", revision=1, status="completed", questionnaire_response=qr,
                                   items=items, facility=facility, today=date(2022, 10, 1))
    assert "SECRET" not in json.dumps(bundle, ensure_ascii=False)
    patient = resources(bundle)["Patient"]
    assert set(patient) <= {"resourceType", "meta", "name", "gender", "birthDate", "address", "telecom"}


def test_deterministic_and_does_not_touch_its_inputs() -> None:
    qr, items, facility = make_qr(ITEMS), dict(ITEMS), dict(FACILITY)
    snapshot = copy.deepcopy((qr, items, facility))
    kwargs = dict(notification_id="n", revision=1, status="completed", questionnaire_response=qr, items=items,
                  facility=facility, today=date(2022, 10, 1))
    first = build_document_bundle(**kwargs)
    assert build_document_bundle(**kwargs) == first
    assert (qr, items, facility) == snapshot
    resources(first)["QuestionnaireResponse"]["item"][0]["item"][0]["answer"].clear()
    assert qr == snapshot[0]


def test_missing_values_are_left_out_not_invented() -> None:
    patient = resources(make_bundle(items={"patient.name": "高橋 健"}))["Patient"]
    assert set(patient) == {"resourceType", "meta", "name"}


def test_without_today_uses_the_current_time_in_japan() -> None:
    bundle = build_document_bundle(notification_id="n", revision=1, status="completed",
                                   questionnaire_response=make_qr(ITEMS), items=ITEMS, facility=FACILITY)
    assert bundle["timestamp"].endswith("+09:00")


@pytest.mark.parametrize(
    "change",
    [
        {"status": "draft"},
        {"revision": 0},
        {"revision": True},
        {"notification_id": " "},
        {"questionnaire_response": {"resourceType": "Patient"}},
        {"questionnaire_response": {**make_qr(ITEMS), "questionnaire": "no-version"}},
    ],
)
def test_contract_violations_raise_value_error(change: dict) -> None:
    kwargs = dict(notification_id="n", revision=1, status="completed", questionnaire_response=make_qr(ITEMS),
                  items=ITEMS, facility=FACILITY, today=date(2022, 10, 1))
    with pytest.raises(ValueError):
        build_document_bundle(**{**kwargs, **change})


def test_answered_item_without_definition_is_refused() -> None:
    qr = make_qr(ITEMS)
    del qr["item"][0]["item"][0]["definition"]
    with pytest.raises(ValueError, match="definition"):
        build_document_bundle(notification_id="n", revision=1, status="completed", questionnaire_response=qr,
                              items=ITEMS, facility=FACILITY)
