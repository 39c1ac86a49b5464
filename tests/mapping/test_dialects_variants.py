"""Vendor dialects (tests/mapping/dialects.py) applied to the public samples and scored like the acceptance
scorer: zero wrong fills always; full recall for every dialect the extract still supports."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mapping import extract_fhir, extract_ssmix2_files

from .conftest import patient_dir, read_folder
from .dialects import FHIR_DIALECTS, SSMIX2_DIALECTS
from .test_samples_and_variants import _total

# dialects that still fail (strict xfail: a fixed one must leave this list)
KNOWN_GAPS: set[str] = set()


def _gap(fmt: str, name: str) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason="known gap")] if f"{fmt}:{name}" in KNOWN_GAPS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("dialect", [_gap("ss-mix2", n) for n in sorted(SSMIX2_DIALECTS)])
def test_ssmix2_dialect(dialect: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                        scorer: ModuleType) -> None:
    make, key_fn = SSMIX2_DIALECTS[dialect]
    pairs = []
    for pid, key in answer_key.items():
        files = make(read_folder(patient_dir(samples, pid)))
        pairs.append((extract_ssmix2_files(files, codes)["items"], key_fn(key)))
    recall, wrong, notes = _total(scorer, pairs)
    assert wrong == 0, notes
    assert recall == 1.0, notes


@pytest.mark.parametrize("dialect", [_gap("fhir", n) for n in sorted(FHIR_DIALECTS)])
def test_fhir_dialect(dialect: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                      scorer: ModuleType) -> None:
    make, key_fn = FHIR_DIALECTS[dialect]
    pairs = []
    for pid, key in answer_key.items():
        bundle = json.loads((samples / "fhir" / f"{pid}.json").read_text(encoding="utf-8"))
        pairs.append((extract_fhir(make(bundle), codes)["items"], key_fn(key)))
    recall, wrong, notes = _total(scorer, pairs)
    assert wrong == 0, notes
    assert recall == 1.0, notes
