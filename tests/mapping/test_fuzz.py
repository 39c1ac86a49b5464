"""Property-based and fuzz tests: malformed input never crashes the parsers (nor a CLI batch)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import hl7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping import extract_csv, extract_fhir, extract_ssmix2_files, load_local_codes
from mapping.codes import parse_result
from mapping.hl7v2 import decode_bytes, parse_text
from mapping.normalize import address, kana_name, parse_date, person_name, phone, postal_code

from .conftest import DEMO, ROOT, SAMPLES

PROFILE = json.loads((ROOT / "demo" / "profiles" / "H0001.json").read_text(encoding="utf-8"))

CODES = load_local_codes({"lab": {"L7001": {"name": "PCR", "method": "pcr"}},
                          "specimen": {"S01": {"name": "鼻咽頭ぬぐい液", "specimen": "nasopharyngeal_swab"}}})
SHAPE = {"items", "provenance", "warnings", "suggestions"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sample_files() -> list[bytes]:
    base = SAMPLES if (SAMPLES / "ss-mix2").is_dir() else DEMO
    return [p.read_bytes() for p in sorted((base / "ss-mix2").rglob("*_1"))[:40]] if base.is_dir() else []


SAMPLE_FILES = _sample_files() or [
    b"MSH|^~\\&|HIS|H0001|SS-MIX2|H0001|20210101||ADT^A08^ADT_A01|1|P|2.5\rPID|0001||1^^^^PI||A^B^^^^^L^I||19800101|M\r"]


def _check(res: Any) -> None:
    assert isinstance(res, dict) and SHAPE <= set(res)
    json.dumps(res, ensure_ascii=False)  # serialisable
    tests = res["items"].get("tests", [])
    assert len(tests) <= 4


hl7_chars = st.sampled_from(list("|^~\\&\r\n MSHPIDOBXSPMPRB0123456789ABCDEFabc陽性陰性山田ﾀﾛｳ\x1b$B(J\x00\xff-"))


@SETTINGS
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check(extract_ssmix2_files({"x/ADT-00/1_-_ADT-00_-_20210101000000000_01_1": data}, CODES))


@SETTINGS
@given(st.text(hl7_chars, max_size=600))
def test_hl7_like_text_never_crashes(text: str) -> None:
    for enc in ("utf-8", "cp932", "iso2022_jp"):
        try:
            data = ("MSH|^~\\&|" + text).encode(enc)
        except UnicodeEncodeError:
            continue
        _check(extract_ssmix2_files({"20210101/OML-11/1_20210101_OML-11_O1_20210101000000000_01_1": data}, CODES))


@SETTINGS
@given(st.sampled_from(range(len(SAMPLE_FILES))), st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 3),
                                                                       st.binary(max_size=4)), max_size=8))
def test_mutated_sample_messages_never_crash(idx: int, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(SAMPLE_FILES[idx])
    for pos, cut, ins in edits:
        pos = pos % (len(data) + 1)
        data[pos:pos + cut] = ins
    _check(extract_ssmix2_files({"d/ADT-00/1_-_ADT-00_-_20210101000000000_01_1": bytes(data)}, CODES))


@SETTINGS
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n|^~\\&"),
                        max_size=12), min_size=1, max_size=12))
def test_splitter_agrees_with_hl7_library(values: list[str]) -> None:
    """Our splitter against the hl7 package (0.4.5) as an oracle, on well-formed single-segment messages."""
    fields = "|".join(values)
    text = f"MSH|^~\\&|A|B|C|D|20210101||ADT^A08|1|P|2.5\rZZZ|{fields}"
    ours = parse_text(text)[0].segments[1]
    theirs = hl7.parse(text).segment("ZZZ")
    for n in range(1, len(values) + 1):
        assert ours.raw(n).strip() == str(theirs[n]).strip()  # hl7 trims the segment end


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20), st.sampled_from(["Patient", "Observation", "U07.1", "陽性", "IMP",
                                                              "2021-01-01", "Patient/1", "SYL"]))
json_tree = st.recursive(json_leaf, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                         st.dictionaries(st.sampled_from(
                                                             ["resourceType", "entry", "resource", "name", "code",
                                                              "coding", "subject", "reference", "valueString",
                                                              "status", "id", "class", "period", "start", "given",
                                                              "family", "extension", "specimen", "telecom"]),
                                                             ch, max_size=5)), max_leaves=40)


@SETTINGS
@given(json_tree)
def test_random_fhir_structures_never_crash(tree: Any) -> None:
    _check(extract_fhir({"resourceType": "Bundle", "entry": tree}, CODES))
    _check(extract_fhir(json.dumps(tree), CODES))


@SETTINGS
@given(st.binary(max_size=500))
def test_random_fhir_bytes_never_crash(data: bytes) -> None:
    _check(extract_fhir(data, CODES))


def test_mutated_fhir_samples_never_crash() -> None:
    base = SAMPLES if (SAMPLES / "fhir").is_dir() else DEMO
    rnd = random.Random(7)
    for p in sorted((base / "fhir").glob("*.json"))[:10]:
        doc = json.loads(p.read_text(encoding="utf-8"))
        for _ in range(30):
            d = json.loads(json.dumps(doc))
            entries = d["entry"]
            victim = rnd.choice(entries)["resource"]
            key = rnd.choice(list(victim))
            victim[key] = rnd.choice([None, 1, "x", [], {}, [{"a": None}], "2021-13-45", {"reference": 5}])
            _check(extract_fhir(d, CODES))


@SETTINGS
@given(st.text(max_size=40))
def test_normalisers_are_total(s: str) -> None:
    for fn in (parse_date, postal_code, phone, address, person_name, kana_name):
        value, warning = fn(s)
        assert value is None or isinstance(value, str)
        assert warning is None or isinstance(warning, str)
    assert parse_result(s) in (None, "positive", "negative", "pending")
    decode_bytes(s.encode("utf-8", errors="ignore"))


@SETTINGS
@given(st.text(max_size=300))
def test_random_csv_never_crashes(text: str) -> None:
    _check(extract_csv(text, CODES, None))
    _check(extract_csv(text, CODES, PROFILE))
    _check(extract_csv("患者ID,漢字姓,検査1_項目コード,検査1_結果\n1," + text + ",L7001,陽性\n", CODES, PROFILE))


def test_huge_and_hostile_payloads(tmp_path: Path) -> None:
    big = b"MSH|^~\\&|" + b"A" * (6 * 1024 * 1024)
    res = extract_ssmix2_files({"a/ADT-00/1_-_ADT-00_-_1_01_1": big}, CODES)
    _check(res)
    assert res["warnings"]
    hostile = (b"MSH|^~\\&|HIS|H|S|H|20210101||ADT^A08|1|P|2.5\r"
               b"PID|0001||1^^^^PI||<script>alert(1)</script>^\x00\x07^^^^^L^I||19800101|M|||"
               b"^^'; DROP TABLE x;--^^1234567^JPN^H")
    res = extract_ssmix2_files({"a/ADT-00/1_-_ADT-00_-_20210101000000000_01_1": hostile}, CODES)
    _check(res)
    assert "\x00" not in json.dumps(res, ensure_ascii=False)
