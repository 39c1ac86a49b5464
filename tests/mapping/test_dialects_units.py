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


def test_guardian_only_for_minors() -> None:
    prb = "PRB|AD|20210301|U071^COVID-19^I10|1|||20210301"
    nk1 = "NK1|1|山田^花子^^^^^L^I|MTH^母^HL70063|^^東京都港区芝公園１−５−２^^1050011^JPN^H"
    ppr = "1_20210301_PPR-01_P1_20210301100000000_01_1"
    for birth, filled in (("20100101", True), ("20020302", True), ("20010301", False), ("19700101", False)):
        files = {f"-/ADT-00/{ADT00}": (MSH + f"PID|1||1^^^^PI||山田^太郎^^^^^L^I||{birth}|M\r{nk1}\r").encode(),
                 f"20210301/PPR-01/{ppr}": (MSH.replace("ADT^A08^ADT_A01", "PPR^ZD1^PPR_ZD1") + prb + "\r").encode()}
        res = extract_ssmix2_files(files, None)
        assert ("patient.guardian_name" in res["items"]) is filled, birth
        assert ("patient.guardian_address" in res["items"]) is filled, birth
        if not filled:
            assert res["suggestions"]["patient.guardian_name"]["value"] == "山田\u3000花子"
