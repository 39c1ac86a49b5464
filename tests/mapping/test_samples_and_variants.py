"""Public samples and variants generated from them, scored exactly like the acceptance scorer: every variant
must keep zero wrong fills (a wrong pre-fill is worse than an empty one) and full recall."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mapping import extract_fhir, extract_ssmix2_dir, extract_ssmix2_files

from .conftest import patient_dir, read_folder
from .variants import FHIR_VARIANTS, SSMIX2_VARIANTS


def _total(scorer: ModuleType, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[float, int, list[str]]:
    c = w = t = 0
    notes: list[str] = []
    for items, key in pairs:
        ci, wi, ti, ni = scorer.score(items, key)
        c, w, t = c + ci, w + wi, t + ti
        notes += ni
    return (c / t if t else 1.0), w, notes


def assert_perfect(scorer: ModuleType, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Zero wrong fills and full recall, scored like the acceptance scorer."""
    recall, wrong, notes = _total(scorer, pairs)
    assert wrong == 0, notes
    assert recall == 1.0, notes


def ssmix2_pairs(make, key_fn, samples: Path, answer_key: dict[str, Any], codes: Any) -> list:
    """(extracted items, expected key) for every sample patient, its SS-MIX2 files rewritten by `make`."""
    return [(extract_ssmix2_files(make(read_folder(patient_dir(samples, pid))), codes)["items"], key_fn(key))
            for pid, key in answer_key.items()]


def fhir_pairs(make, key_fn, samples: Path, answer_key: dict[str, Any], codes: Any) -> list:
    """(extracted items, expected key) for every sample patient, its FHIR bundle rewritten by `make`."""
    return [(extract_fhir(make(json.loads((samples / "fhir" / f"{pid}.json").read_text(encoding="utf-8"))),
                          codes)["items"], key_fn(key))
            for pid, key in answer_key.items()]


def test_ssmix2_public_samples(samples: Path, answer_key: dict[str, Any], codes: Any, scorer: ModuleType) -> None:
    pairs = [(extract_ssmix2_dir(patient_dir(samples, pid), codes)["items"], key) for pid, key in answer_key.items()]
    recall, wrong, notes = _total(scorer, pairs)
    assert wrong == 0, notes
    assert recall == 1.0, notes


def test_fhir_public_samples(samples: Path, answer_key: dict[str, Any], codes: Any, scorer: ModuleType) -> None:
    pairs = [(extract_fhir((samples / "fhir" / f"{pid}.json").read_bytes(), codes)["items"], key)
             for pid, key in answer_key.items()]
    recall, wrong, notes = _total(scorer, pairs)
    assert wrong == 0, notes
    assert recall == 1.0, notes


@pytest.mark.parametrize("variant", sorted(SSMIX2_VARIANTS))
def test_ssmix2_variant(variant: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                        scorer: ModuleType) -> None:
    assert_perfect(scorer, ssmix2_pairs(*SSMIX2_VARIANTS[variant], samples, answer_key, codes))


@pytest.mark.parametrize("variant", sorted(FHIR_VARIANTS))
def test_fhir_variant(variant: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                      scorer: ModuleType) -> None:
    assert_perfect(scorer, fhir_pairs(*FHIR_VARIANTS[variant], samples, answer_key, codes))


def test_provenance_names_the_source(samples: Path, codes: Any) -> None:
    res = extract_ssmix2_dir(patient_dir(samples, "9400000001"), codes)
    prov = res["provenance"]
    assert prov["patient.address"] == "ss-mix2:ADT-00 PID-11"
    assert prov["patient.postal_code"] == "ss-mix2:ADT-00 PID-11.5"
    assert prov["care.admission_date"].startswith("ss-mix2:ADT-22")
    assert prov["tests[0].result"].startswith("ss-mix2:OML-11 OBX-5")
    assert set(res) == {"items", "provenance", "warnings", "suggestions"}
    for item in res["items"]:
        if item != "tests":
            assert item in prov
    fres = extract_fhir((samples / "fhir" / "9400000001.json").read_bytes(), codes)
    assert fres["provenance"]["patient.address"] == "fhir:Patient.address[0]"


def test_suggestions_are_kept_apart_from_facts(samples: Path, codes: Any) -> None:
    res = extract_ssmix2_dir(patient_dir(samples, "6800000005"), codes)
    assert "report.diagnosis_class" not in res["items"]
    assert res["suggestions"]["report.diagnosis_class"]["value"] == "confirmed_patient"
    assert "care.hospitalized" not in res["items"]  # no admission record is not proof of "no"
