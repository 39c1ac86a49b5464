"""Vendor dialects (tests/mapping/dialects.py) applied to the public samples and scored like the acceptance
scorer: zero wrong fills always; full recall for every dialect the extract still supports."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .dialects import FHIR_DIALECTS, SSMIX2_DIALECTS
from .test_samples_and_variants import assert_perfect, fhir_pairs, ssmix2_pairs

# dialects that still fail (strict xfail: a fixed one must leave this list)
KNOWN_GAPS: set[str] = set()


def _gap(fmt: str, name: str) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason="known gap")] if f"{fmt}:{name}" in KNOWN_GAPS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("dialect", [_gap("ss-mix2", n) for n in sorted(SSMIX2_DIALECTS)])
def test_ssmix2_dialect(dialect: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                        scorer: ModuleType) -> None:
    assert_perfect(scorer, ssmix2_pairs(*SSMIX2_DIALECTS[dialect], samples, answer_key, codes))


@pytest.mark.parametrize("dialect", [_gap("fhir", n) for n in sorted(FHIR_DIALECTS)])
def test_fhir_dialect(dialect: str, samples: Path, answer_key: dict[str, Any], codes: Any,
                      scorer: ModuleType) -> None:
    assert_perfect(scorer, fhir_pairs(*FHIR_DIALECTS[dialect], samples, answer_key, codes))
