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


def _adt(date: str, dtype: str, trig: str, stamp: str, pv1: str) -> tuple[str, bytes]:
    msh = MSH.replace("ADT^A08^ADT_A01", f"ADT^{trig}^ADT_A01")
    rel = f"{date}/{dtype}/1_{date}_{dtype}_-_{stamp}_01_1"
    return rel, (msh + "PID|1||1^^^^PI||山田^太郎^^^^^L^I||19800101|M\r" + pv1 + "\r").encode()


def test_admission_cancels_by_date_and_order() -> None:
    adm = "PV1|1|I|W3" + "|" * 41 + "{d}140000"
    base = dict([_adt("20210301", "ADT-22", "A01", "20210301140000000", adm.format(d="20210301"))])
    # cancelled (A11 with the admission date), then entered again: the re-entered admission stands
    files = {**base, **dict([_adt("20210301", "ADT-22", "A11", "20210301150000000", adm.format(d="20210301")),
                             _adt("20210301", "ADT-22", "A01", "20210301160000000", adm.format(d="20210301"))])}
    assert extract_ssmix2_files(files, None)["items"].get("care.admission_date") == "2021-03-01"
    # a cancel whose date cannot be told cancels every admission
    files = {**base, **dict([_adt("-", "ADT-22", "A11", "20210301150000000", "PV1|1|I")])}
    assert "care.admission_date" not in extract_ssmix2_files(files, None)["items"]


CODES = {"lab": {"L7001": {"name": "SARS-CoV-2 核酸検出（PCR）", "method": "pcr"}},
         "specimen": {"S01": {"name": "鼻咽頭ぬぐい液", "specimen": "nasopharyngeal_swab"}}}


def _lab(stamp: str, orc: str, *obx: str, order: str = "O1") -> tuple[str, bytes]:
    msh = MSH.replace("ADT^A08^ADT_A01", "OUL^R22^OUL_R22")
    body = ["PID|1||1^^^^PI||山田^太郎^^^^^L^I||19800101|M", "SPM|1|||S01^鼻咽頭ぬぐい液^99L" + "|" * 13 + "20210301100000",
            orc, f"OBR|1|{order}||L7001^SARS-CoV-2 核酸検出（PCR）^99L" + "|" * 18 + "20210302100000", *obx]
    return f"20210301/OML-11/1_20210301_OML-11_{order}_{stamp}_01_1", (msh + "\r".join(b for b in body if b) + "\r").encode()


def _tests(*files: tuple[str, bytes]) -> list[dict[str, Any]]:
    return extract_ssmix2_files(dict(files), CODES)["items"].get("tests", [])


def test_lab_cancel_correct_conflict() -> None:
    pos = "OBX|1|CWE|L7001^PCR^99L||POS^陽性^99L||||||{st}"
    neg = "OBX|1|CWE|L7001^PCR^99L||NEG^陰性^99L||||||{st}"
    first = _lab("20210302100000000", "", pos.format(st="F"))
    assert [t["result"] for t in _tests(first)] == ["positive"]
    # a newer file of the same order cancels it (ORC-1 CA, no OBX at all)
    assert _tests(first, _lab("20210303100000000", "ORC|CA|O1")) == []
    # a newer file with the corrected value wins; a preliminary alone is kept, a final supersedes it
    assert [t["result"] for t in _tests(first, _lab("20210303100000000", "", neg.format(st="C")))] == ["negative"]
    assert [t["result"] for t in _tests(_lab("20210302100000000", "", pos.format(st="P")))] == ["positive"]
    # two final results of the same analyte that contradict each other: no result
    both = _lab("20210302100000000", "", pos.format(st="F"), neg.format(st="F"))
    assert [t.get("result") for t in _tests(both)] == [None]


def test_unknown_code_with_registered_name() -> None:
    jlac = "OBX|1|CWE|5F625145001986201^SARS-CoV-2 核酸検出（PCR）^JC10||POS^陽性^99L||||||F"
    assert [t["method"] for t in _tests(_lab("20210302100000000", "", jlac))] == ["pcr"]


def test_fhir_value_contradicting_interpretation_gives_no_result() -> None:
    codes = {"lab": {"L7001": {"name": "PCR", "method": "pcr"}}}
    obs = {"resourceType": "Observation", "id": "o", "status": "final",
           "code": {"coding": [{"code": "L7001"}]}, "effectiveDateTime": "2021-03-01",
           "valueCodeableConcept": {"text": "陽性"},
           "interpretation": [{"coding": [{"code": "NEG"}]}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs}]}
    assert [t.get("result") for t in extract_fhir(bundle, codes)["items"]["tests"]] == [None]
