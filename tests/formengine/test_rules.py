"""A case where each rule of each COVID-19 catalog stays quiet and one where it fires.

Parametrised over the rules of the loaded definitions: a rule added to a catalog without cases here fails
test_every_rule_has_cases.
"""
from __future__ import annotations

from typing import Any

import pytest

import vocabulary
from formengine import builtin_definition, evaluate

from .conftest import TODAY, base_values, patched

TEST_ROW = {"method": "pcr", "specimen": "saliva", "collection_date": "2022-09-28", "result": "positive",
            "result_date": "2022-09-29"}

#: rule id -> (quiet patch, firing patch)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dates.not_future": ({}, {"report.report_date": "2022-10-09"}),
    "dates.after_birth": ({"patient.birth_date": "2022-09-27"}, {"patient.birth_date": "2022-09-28"}),
    "dates.onset_diagnosis_report": ({"clinical.onset_date": "2022-09-29"}, {"clinical.onset_date": "2022-09-30"}),
    "dates.first_visit_diagnosis": ({"clinical.first_visit_date": "2022-09-29"},
                                    {"clinical.first_visit_date": "2022-09-30"}),
    "tests.collection_before_result": (
        {"tests": [{**TEST_ROW, "collection_date": "2022-09-29"}, {**TEST_ROW, "collection_date": "2022-09-20",
                                                                   "result_date": "2022-09-21"}]},
        {"tests": [TEST_ROW, {**TEST_ROW, "collection_date": "2022-09-30", "result_date": "2022-09-29"}]}),
    "care.admission_before_discharge": (
        {"care.hospitalized": "yes", "care.admission_date": "2022-09-29", "care.discharge_date": "2022-09-29"},
        {"care.hospitalized": "yes", "care.admission_date": "2022-09-30", "care.discharge_date": "2022-09-29"}),
    "death_date.required_if_dead": (
        {"report.diagnosis_class": "dead_confirmed", "clinical.death_date": "2022-09-29"},
        {"report.diagnosis_class": "dead_suspected"}),
    "confirmed.needs_positive_test": (
        {"tests": [{"method": "clinical", "collection_date": "2022-09-28"}]},
        {"tests": [{**TEST_ROW, "result": "negative"}, {**TEST_ROW, "result": "pending"}]}),
    "care.severity_consistency": (
        {"care.severity": "severe", "care.ventilator": "yes"},
        {"care.severity": "severe", "care.icu": "no"}),
    "patient.guardian_expected_if_minor": (
        {"patient.birth_date": "2010-01-01", "patient.guardian_name": "見本　一郎"},
        {"patient.birth_date": "2010-01-01"}),
    "patient.age_derived": ({"patient.age": {"value": 3, "unit": "years"}},
                            {"patient.birth_date": "2022-09-30", "clinical.onset_date": None,
                             "clinical.first_visit_date": None}),
    "tests.max_4": ({"tests": [TEST_ROW] * 4}, {"tests": [TEST_ROW] * 5}),
    "target.not_notifiable_if_empty": ({}, {"report.notification_target": None}),
    "target.suggest_age65": ({"patient.birth_date": "1957-09-30"}, {"patient.birth_date": "1957-09-29",
                                                                    "report.notification_target": None}),
    "target.suggest_hospitalized": (
        {"care.hospitalized": "yes", "report.notification_target": ["hospitalization_required"]},
        {"care.hospitalized": "yes"}),
    "target.suggest_pregnant": (
        {"risk.factors": ["pregnancy"], "report.notification_target": ["pregnant"]},
        {"risk.factors": ["pregnancy"]}),
}


def _rules() -> list[tuple[str, dict[str, Any]]]:
    return [(v, rule) for v in vocabulary.catalogs_for("covid19") for rule in builtin_definition(v)["rules"]]


def _fired(evaluation, rule_id: str) -> bool:
    if any(m.rule_id == rule_id for m in evaluation.messages):
        return True
    return any(s["rule_id"] == rule_id for entry in evaluation.suggestions.values() for s in entry["items"])


def test_every_rule_has_cases():
    missing = sorted({rule["id"] for _, rule in _rules()} - set(CASES))
    assert not missing, f"rules without quiet/firing cases: {missing}"


def test_base_case_is_clean(version):
    defn = builtin_definition(version)
    ev = evaluate(defn, base_values(version), today=TODAY, stage="confirm")
    assert ev.errors == [] and ev.warnings == [], ev.messages
    assert ev.ok_to_confirm and ev.notifiable
    assert ev.suggestions == {}


@pytest.mark.parametrize(("version", "rule"), _rules(), ids=lambda x: x if isinstance(x, str) else x["id"])
def test_rule_quiet_case(version, rule):
    quiet, _ = CASES[rule["id"]]
    ev = evaluate(builtin_definition(version), patched(version, quiet), today=TODAY, stage="confirm")
    assert not _fired(ev, rule["id"]), ev.messages
    assert ev.notifiable


@pytest.mark.parametrize(("version", "rule"), _rules(), ids=lambda x: x if isinstance(x, str) else x["id"])
def test_rule_firing_case(version, rule):
    _, firing = CASES[rule["id"]]
    ev = evaluate(builtin_definition(version), patched(version, firing), today=TODAY, stage="confirm")
    assert _fired(ev, rule["id"]), ev.messages
    fired = [m for m in ev.messages if m.rule_id == rule["id"]]
    for message in fired:
        assert message.severity == rule["severity"]
        assert message.text_ja and "{" not in message.text_ja
    if rule["severity"] == "error" and fired:
        assert not ev.ok_to_confirm
    if rule["kind"] == "not_notifiable_if_empty":
        assert ev.notifiable is False
