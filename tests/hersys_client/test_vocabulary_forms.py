"""The Bundle builder and the sandbox read forms, item sets and labels from `vocabulary` (no COVID tables)."""

from __future__ import annotations

import copy
from datetime import date

import pytest

import vocabulary
from hersys_client import build_document_bundle, questionnaire_canonical
from hersys_client.bundle import QUESTIONNAIRE_URL, questionnaire_form_version
from hersys_client.sandbox import validation
from hersys_client.sandbox.validation import DEFAULT_ACCEPTED_VERSIONS, validate_bundle

from .factories import FACILITY, ITEMS, make_bundle, make_qr


def _with_canonical(bundle: dict, canonical: str) -> dict:
    bundle = copy.deepcopy(bundle)
    bundle["entry"][-1]["resource"]["questionnaire"] = canonical
    return bundle


def test_canonical_carries_form_and_version() -> None:
    assert questionnaire_canonical("covid19", "2022-09").endswith("/covid19|2022-09")
    assert questionnaire_form_version(questionnaire_canonical("ehec", "2019-04")) == ("ehec", "2019-04")
    assert questionnaire_form_version(f"{QUESTIONNAIRE_URL}|2021-03") == ("covid19", "2021-03")  # legacy URL
    assert questionnaire_form_version("no-version") == (None, None)
    assert questionnaire_form_version(None) == (None, None)


@pytest.mark.parametrize("canonical", [questionnaire_canonical("covid19", "2022-09"), f"{QUESTIONNAIRE_URL}|2022-09"])
def test_sandbox_accepts_the_new_and_the_legacy_canonical(canonical: str) -> None:
    submission, issues = validate_bundle(_with_canonical(make_bundle(), canonical), DEFAULT_ACCEPTED_VERSIONS)
    assert issues == []
    assert submission is not None and (submission.form, submission.version) == ("covid19", "2022-09")


def test_default_accepted_versions_are_every_shipped_catalog() -> None:
    assert DEFAULT_ACCEPTED_VERSIONS == vocabulary.catalog_ids()


def test_an_accepted_entry_is_a_catalog_id_or_a_bare_version() -> None:
    bundle = make_bundle()
    assert validate_bundle(bundle, ["covid19-2022-09"])[1] == []
    assert validate_bundle(bundle, ["2022-09"])[1] == []
    _, issues = validate_bundle(bundle, ["covid19-2021-03", "othr-2022-09"])
    assert issues and issues[0].code == "not-supported"


def test_an_unknown_form_is_refused_in_japanese() -> None:
    bundle = _with_canonical(make_bundle(), questionnaire_canonical("smallpox", "2022-09"))
    _, issues = validate_bundle(bundle, ["2022-09"])
    assert [i.code for i in issues] == ["not-supported"]
    assert "smallpox" in issues[0].diagnostics and "受け付けていません" in issues[0].diagnostics


def test_required_items_and_their_labels_come_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    items = {k: v for k, v in ITEMS.items() if k != "patient.birth_date"}
    _, issues = validate_bundle(make_bundle(items=items), DEFAULT_ACCEPTED_VERSIONS)
    label = vocabulary.item_labels("covid19", "2022-09")["patient.birth_date"]
    assert [i.diagnostics for i in issues] == [f"必須項目「{label}」（patient.birth_date）が入力されていません。"]
    # a catalog that requires another item set is obeyed with no code change
    monkeypatch.setattr(validation.vocabulary, "item_set", lambda form, version: ("clinical.diagnosis_date",))
    assert validate_bundle(make_bundle(items=items), DEFAULT_ACCEPTED_VERSIONS)[1] == []
    no_diagnosis = {k: v for k, v in ITEMS.items() if k != "clinical.diagnosis_date"}
    _, issues = validate_bundle(make_bundle(items=no_diagnosis), DEFAULT_ACCEPTED_VERSIONS)
    assert [i.code for i in issues] == ["required"] and "clinical.diagnosis_date" in issues[0].diagnostics


def test_a_withdrawal_needs_no_content_even_for_a_retired_version() -> None:
    bundle = make_bundle(status="stopped", items={}, version="2021-03")
    assert validate_bundle(bundle, ["covid19-2022-09"])[1] == []


def _composition(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


def test_composition_title_follows_the_form_of_the_questionnaire() -> None:
    composition = _composition(make_bundle())
    disease = vocabulary.catalog("covid19-2022-09")["disease"]
    assert composition["title"] == f"{disease} 発生届" == "新型コロナウイルス感染症 発生届"
    assert composition["type"]["coding"][0]["code"] == "covid19-notification"


def test_composition_title_can_be_given_and_an_unknown_form_gets_a_neutral_one() -> None:
    qr = make_qr(ITEMS)
    titled = build_document_bundle(notification_id="n", revision=1, status="completed", questionnaire_response=qr,
                                   items=ITEMS, facility=FACILITY, today=date(2022, 10, 1), document_title="見本")
    assert _composition(titled)["title"] == "見本"
    qr["questionnaire"] = questionnaire_canonical("unknownform", "1")
    neutral = build_document_bundle(notification_id="n", revision=1, status="completed", questionnaire_response=qr,
                                    items=ITEMS, facility=FACILITY, today=date(2022, 10, 1))
    assert _composition(neutral)["title"] == "発生届"
    assert _composition(neutral)["type"]["coding"][0]["code"] == "notification"
