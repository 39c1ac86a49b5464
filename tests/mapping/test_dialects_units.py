"""Targeted checks for vendor dialects the answer key cannot express (values other than the samples')."""

from __future__ import annotations

from typing import Any

from mapping import extract_fhir, extract_ssmix2_files

MSH = "MSH|^~\\&|HIS|H0001|SS-MIX2|H0001|20210301090000||ADT^A08^ADT_A01|1|P|2.5\r"
ADT00 = "1_-_ADT-00_-_20210301090000000_01_1"


def _ss(*segments: str, name: str = ADT00) -> dict[str, Any]:
    return extract_ssmix2_files({f"-/ADT-00/{name}": (MSH + "\r".join(segments) + "\r").encode("utf-8")}, None)


def test_romaji_only_name_is_the_name_but_never_beats_kanji() -> None:
    res = _ss("PID|1||1^^^^PI||SMITH^JOHN^^^^^L^A||19800101|M")
    assert res["items"]["patient.name"] == "SMITH\u3000JOHN"
    res = _ss("PID|1||1^^^^PI||SMITH^JOHN^^^^^L^A~山田^太郎^^^^^L^I||19800101|M")
    assert res["items"]["patient.name"] == "山田\u3000太郎"
    fres = extract_fhir({"resourceType": "Patient", "id": "1", "name": [
        {"family": "SMITH", "given": ["JOHN"]}, {"family": "山田", "given": ["太郎"]}]}, None)
    assert fres["items"]["patient.name"] == "山田\u3000太郎"
