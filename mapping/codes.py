"""Code tables: the hospital's local lab/specimen codes, ICD-10 → risk factors, qualitative test results."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import vocabulary
from vocabulary import ids

from .normalize import clean

CODETABLES = Path(__file__).resolve().parent / "codetables"

#: The test methods and specimens a local code may map to: the value sets of the newest COVID-19 catalog.
METHODS = frozenset(vocabulary.value_codes(vocabulary.latest(ids.FORM_COVID19), ids.TESTS_METHOD))
SPECIMENS = frozenset(vocabulary.value_codes(vocabulary.latest(ids.FORM_COVID19), ids.TESTS_SPECIMEN))


# relationship words that make a contact the patient's guardian (保護者) — nothing broader (not 親戚, 祖母 ...)
GUARDIAN_TEXT = frozenset({"保護者", "母", "父", "母親", "父親", "親権者", "後見人", "未成年後見人", "guardian", "parent",
                           "mother", "father"})


def _key(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s)).upper()


@dataclass
class LocalCodes:
    """A hospital's own codes: lab item code → test method, specimen code → specimen (catalog codes)."""

    lab: dict[str, str] = field(default_factory=dict)
    specimen: dict[str, str] = field(default_factory=dict)
    lab_names: dict[str, str] = field(default_factory=dict)
    specimen_names: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def method(self, code: str, name: str = "") -> str | None:
        """Method for a lab code (exact code first, then the exact registered name)."""
        c = clean(code)
        if c and c in self.lab:
            return self.lab[c]
        if c and _key(c) in self.lab_names:
            return self.lab_names[_key(c)]
        # a code the table does not know (JLAC10, another system) with exactly the registered test name
        n = clean(name)
        if n and _key(n) in self.lab_names:
            return self.lab_names[_key(n)]
        return None

    def specimen_of(self, code: str, name: str = "") -> str | None:
        c = clean(code)
        if c and c in self.specimen:
            return self.specimen[c]
        if c and _key(c) in self.specimen_names:
            return self.specimen_names[_key(c)]
        n = clean(name)
        if n and _key(n) in self.specimen_names:
            return self.specimen_names[_key(n)]
        return None


def load_local_codes(source: str | Path | dict[str, Any] | LocalCodes | None) -> LocalCodes:
    """Load a local-codes table (path or already-parsed dict). Never raises: problems go to ``.errors``."""
    if isinstance(source, LocalCodes):
        return source
    codes = LocalCodes()
    data: Any = source
    if source is None:
        codes.errors.append("院内コード表が指定されていません（検査項目・検体を変換できません）")
        return codes
    if isinstance(source, (str, Path)):
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            codes.errors.append(f"院内コード表を読み込めません: {source} ({type(exc).__name__})")
            return codes
    if not isinstance(data, dict):
        codes.errors.append("院内コード表の形式が不正です")
        return codes
    for section, target, names, allowed, key in (("lab", codes.lab, codes.lab_names, METHODS, "method"),
                                                 ("specimen", codes.specimen, codes.specimen_names, SPECIMENS,
                                                  "specimen")):
        table = data.get(section)
        if not isinstance(table, dict):
            continue
        for code, entry in table.items():
            if not isinstance(entry, dict):
                continue
            value = entry.get(key)
            if value not in allowed:
                codes.errors.append(f"院内コード {code} の値 {value!r} は項目定義にありません（無視しました）")
                continue
            target[clean(str(code))] = value
            name = clean(entry.get("name"))
            if name:
                k = _key(name)
                # a name shared by codes with different meanings is not usable for matching
                names[k] = value if names.get(k, value) == value else "__ambiguous__"
    for names in (codes.lab_names, codes.specimen_names):
        for k in [k for k, v in names.items() if v == "__ambiguous__"]:
            del names[k]
    return codes


# --- ICD-10 ------------------------------------------------------------------------------------------------------

ICD_RE = re.compile(r"^[A-Z]\d{2}[0-9A-Z]{0,3}$")


def icd10_norm(code: str) -> str | None:
    """'J44.9' / 'j449' / 'Ｊ４４．９' → 'J449'; None if it does not look like ICD-10."""
    c = unicodedata.normalize("NFKC", clean(code)).upper().replace(".", "").replace(" ", "")
    c = c.rstrip("-+*†")
    return c if ICD_RE.match(c) else None


@lru_cache(maxsize=1)
def _risk_rules() -> tuple[dict[str, Any], ...]:
    data = json.loads((CODETABLES / "icd10_risk.json").read_text(encoding="utf-8"))
    return tuple(data["rules"])


def risk_factor(code: str) -> str | None:
    """Catalog risk factor for a normalised ICD-10 code, or None."""
    c = icd10_norm(code)
    if not c:
        return None
    for rule in _risk_rules():
        if any(c.startswith(e) for e in rule.get("except", [])):
            continue
        if "prefix" in rule and any(c.startswith(p) for p in rule["prefix"]):
            return rule["factor"]
        if "from" in rule and rule["from"] <= c[:3] <= rule["to"]:
            return rule["factor"]
    return None


def is_covid_confirmed(code: str) -> bool:
    return icd10_norm(code) == "U071"


# the 標準病名 (MEDIS) of U07.1 and its usual spellings: a disease name WITHOUT a code counts as U07.1 only when it is
# exactly one of these (「疑い」, 「除外」, 「臨床診断」 and any other wording never match)
_COVID_NAMES = frozenset({"COVID-19", "COVID19", "新型コロナウイルス感染症", "COVID-19(新型コロナウイルス感染症)",
                          "新型コロナウイルス感染症(COVID-19)", "COVID-19感染症"})


def is_covid_name(name: object) -> bool:
    s = unicodedata.normalize("NFKC", clean(name)).upper()
    s = re.sub(r"\s+", "", s).translate({ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"})
    return s in _COVID_NAMES


def is_covid_clinical(code: str) -> bool:
    return icd10_norm(code) == "U072"


# --- qualitative results ---------------------------------------------------------------------------------------

_POS = ["陽性", "POSITIVE", "POS", "DETECTED", "DET", "検出", "REACTIVE", "+", "(+)"]
_NEG = ["陰性", "NEGATIVE", "NEG", "NOTDETECTED", "NONDETECTED", "ND", "検出せず", "不検出", "未検出", "NONREACTIVE",
        "-", "(-)"]
_PEND = ["判定中", "検査中", "結果待ち", "PENDING", "測定中"]
_TOKENS = sorted([(t, ids.RESULT_POSITIVE) for t in _POS] + [(t, ids.RESULT_NEGATIVE) for t in _NEG]
                 + [(t, ids.RESULT_PENDING) for t in _PEND],
                 key=lambda x: -len(x[0]))
_SNOMED = {"10828004": ids.RESULT_POSITIVE, "260373001": ids.RESULT_POSITIVE, "260385009": ids.RESULT_NEGATIVE,
           "260415000": ids.RESULT_NEGATIVE}


def parse_result(value: object) -> str | None:
    """'陽性' / '（＋）' / 'POS' / 'neg' / '陰性(-)' → catalog result code; None if not clearly one of them."""
    s = unicodedata.normalize("NFKC", clean(value)).upper()
    s = s.translate({ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc"})
    s = re.sub(r"[\s　\[\]「」【】()]", "", s)
    if not s:
        return None
    if s in _SNOMED:
        return _SNOMED[s]
    found: set[str] = set()
    i = 0
    while i < len(s):
        for tok, val in _TOKENS:
            t = tok.replace("(", "").replace(")", "")
            if t and s.startswith(t, i):
                found.add(val)
                i += len(t)
                break
        else:
            return None  # unknown text: not a result we can read without guessing
    return found.pop() if len(found) == 1 else None


def parse_interpretation(code: object) -> str | None:
    """HL7 abnormal flag / FHIR interpretation code → result (only unambiguous codes)."""
    c = clean(code).upper()
    return {"POS": ids.RESULT_POSITIVE, "DET": ids.RESULT_POSITIVE, "A": ids.RESULT_POSITIVE,
            "AA": ids.RESULT_POSITIVE, "NEG": ids.RESULT_NEGATIVE, "ND": ids.RESULT_NEGATIVE,
            "N": ids.RESULT_NEGATIVE}.get(c)
