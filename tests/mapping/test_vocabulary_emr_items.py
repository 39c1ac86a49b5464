"""`mapping` fills only what the COVID-19 catalogs allow an EMR extract to fill (their ``emr_items``), with the
value sets of the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import vocabulary
from mapping import extract_csv_patients, extract_fhir, extract_ssmix2_dir
from mapping.codes import METHODS, SPECIMENS
from vocabulary import ids

from .conftest import DEMO, ROOT, patient_dir

LATEST = vocabulary.latest(ids.FORM_COVID19)


def _allowed() -> tuple[set[str], dict[str, set[str]]]:
    catalog = vocabulary.catalog(LATEST)
    allowed = set(catalog["emr_items"])
    groups = {i["group"] for i in catalog["items"] if i.get("group") and i["id"] in allowed}
    return allowed | groups, {i["id"]: {v["code"] for v in i["values"]} for i in catalog["items"] if "values" in i}


def _check(result: dict[str, Any]) -> None:
    allowed, values = _allowed()
    assert set(result["items"]) <= allowed, set(result["items"]) - allowed
    for item_id, value in result["items"].items():
        if item_id == ids.TESTS:
            for row in value:
                assert {f"{ids.TESTS}.{k}" for k in row} <= allowed
                for key, code in row.items():
                    if f"{ids.TESTS}.{key}" in values:
                        assert code in values[f"{ids.TESTS}.{key}"], (key, code)
        elif item_id in values:
            for code in value if isinstance(value, list) else [value]:
                assert code in values[item_id], (item_id, code)


def test_extracts_fill_only_the_catalogs_emr_items(samples: Path, codes: Any) -> None:
    pids = sorted(p.stem for p in (samples / "fhir").glob("*.json"))
    assert pids
    for pid in pids:
        _check(extract_ssmix2_dir(patient_dir(samples, pid), codes))
        _check(extract_fhir((samples / "fhir" / f"{pid}.json").read_bytes(), codes))
    profile = json.loads((ROOT / "demo" / "profiles" / "H0001.json").read_text(encoding="utf-8"))
    for result in extract_csv_patients((DEMO / "dwh" / "H0001-sample.csv").read_bytes(), codes, profile).values():
        _check(result)


def test_local_code_targets_are_the_catalog_value_sets() -> None:
    assert METHODS == set(vocabulary.value_codes(LATEST, ids.TESTS_METHOD))
    assert SPECIMENS == set(vocabulary.value_codes(LATEST, ids.TESTS_SPECIMEN))
