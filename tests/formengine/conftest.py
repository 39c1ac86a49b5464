"""Fixtures for the pure form engine: no database, no Django needed (runs with `-p no:django` too)."""
from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from formengine import builtin_definition

TODAY = date(2022, 10, 5)

#: A complete, consistent notification (invented patient) valid under both catalogs.
BASE_VALUES: dict[str, Any] = {
    "report.diagnosis_class": "confirmed_patient",
    "report.report_date": "2022-10-01",
    "report.physician_name": "岡田　玲子",
    "report.facility_name": "見本総合病院",
    "report.facility_address": "東京都港区芝公園１−５−２",
    "report.facility_phone": "03-1234-5678",
    "patient.name": "見本　花子",
    "patient.name_kana": "ミホン　ハナコ",
    "patient.sex": "female",
    "patient.birth_date": "1980-05-10",
    "patient.address": "東京都港区芝公園１−５−２",
    "patient.residence_address": "東京都港区芝公園１−５−２",
    "clinical.onset_date": "2022-09-27",
    "clinical.first_visit_date": "2022-09-28",
    "clinical.diagnosis_date": "2022-09-29",
    "tests": [{"method": "pcr", "specimen": "nasopharyngeal_swab", "collection_date": "2022-09-28",
               "result": "positive", "result_date": "2022-09-29"}],
    "care.hospitalized": "no",
}


def base_values(version: str) -> dict[str, Any]:
    values = copy.deepcopy(BASE_VALUES)
    if version == "covid19-2022-09":
        values["report.notification_target"] = ["risk_with_treatment"]
    return values


def patched(version: str, patch: dict[str, Any]) -> dict[str, Any]:
    values = base_values(version)
    for key, value in patch.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = copy.deepcopy(value)
    return values


@pytest.fixture(params=["covid19-2021-03", "covid19-2022-09"])
def version(request) -> str:
    return request.param


@pytest.fixture
def defn(version) -> dict[str, Any]:
    return builtin_definition(version)
