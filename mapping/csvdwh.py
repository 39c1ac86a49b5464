"""DWH / CSV exports → HER-SYS items, driven by a per-hospital column-mapping profile (JSON, edited by the
central admin and stored with the hospital; an example is demo/profiles/H0001.json — no hospital's profile ships
with this library).

Profile keys:
  encoding          "auto" (UTF-8 with/without BOM, else cp932) or a codec name
  delimiter         "," (default) or "\\t" ...
  patient_id        column holding the patient id (rows of the same id are merged)
  columns           item id -> {"column": name} | {"columns": [family, given]}, optional "type"
                    (name, kana, sex, date, postal_code, phone, address, text, yes_no, icd10_list) and "map"
                    (source value -> catalog code) and "split" (list separator for icd10_list)
  tests             {"slots": 4, "columns": {"method": "検査{n}_項目コード", "specimen": ..., "collection_date": ...,
                    "result": ..., "result_date": ...}} — wide layout, {n} = 1..slots; or "layout": "long" with
                    plain column names (one test per row)
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from vocabulary import ids

from . import normalize as nz
from .assemble import Condition, Diagnosis, Event, Facts, Test, empty_result, finalize
from .codes import LocalCodes, is_covid_confirmed, load_local_codes, parse_result, risk_factor

MAX_BYTES = 50 * 1024 * 1024


# Date columns that become dated facts for the shared episode logic: item → (Facts list, fact type).
_DATE_EVENTS: dict[str, tuple[str, Any]] = {
    ids.CLINICAL_DIAGNOSIS_DATE: ("diagnoses", Diagnosis),
    ids.CLINICAL_FIRST_VISIT_DATE: ("visits", Event),
    ids.CARE_ADMISSION_DATE: ("admissions", Event),
    ids.CARE_DISCHARGE_DATE: ("discharges", Event),
}


def load_profile(source: str | os.PathLike[str] | dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(source, dict):
        return source, None
    if not source:
        return None, "マッピングプロファイルが指定されていません（医療機関ごとのCSV列対応が必要です）"
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        return None, f"マッピングプロファイルを読み込めません: {path} ({type(exc).__name__})"
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        return None, f"マッピングプロファイルの形式が不正です: {path}"
    return data, None


def _decode(data: bytes, encoding: str) -> str | None:
    encs = ["utf-8-sig", "cp932"] if encoding in ("", "auto") else [encoding]
    for enc in encs:
        try:
            return data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _cell(row: dict[str, str], spec: Any) -> tuple[str, str]:
    """(value, column label) for a column spec."""
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        return "", ""
    if "columns" in spec:
        cols = [c for c in spec["columns"] if isinstance(c, str)]
        vals = [nz.clean(row.get(c)) for c in cols]
        return " ".join(v for v in vals if v), "+".join(cols)
    col = spec.get("column")
    return (nz.clean(row.get(col)) if isinstance(col, str) else ""), str(col)


_TYPES = {
    ids.PATIENT_NAME: "name", ids.PATIENT_NAME_KANA: "kana", ids.PATIENT_SEX: "sex", ids.PATIENT_BIRTH_DATE: "date",
    ids.PATIENT_POSTAL_CODE: "postal_code", ids.PATIENT_ADDRESS: "address", ids.PATIENT_PHONE: "phone",
    ids.PATIENT_GUARDIAN_NAME: "name", ids.PATIENT_GUARDIAN_ADDRESS: "address", ids.REPORT_PHYSICIAN_NAME: "name",
    ids.CLINICAL_DEATH_DATE: "date", ids.CARE_HOSPITALIZED: "yes_no", ids.RISK_FACTORS: "icd10_list",
}


def _convert(kind: str, value: str, spec: dict[str, Any]) -> tuple[Any, str | None]:
    mapping = spec.get("map") if isinstance(spec.get("map"), dict) else None
    if mapping is not None:
        if value in mapping:
            return mapping[value], None
        if kind == "text":
            return None, f"値「{value[:20]}」はプロファイルの変換表にありません"
        # not in the table: the type's own reading still applies (e.g. '女' or 'female' for sex)
    if kind == "name":
        return nz.person_name(value)
    if kind == "kana":
        return nz.kana_name(value)
    if kind == "sex":
        return nz.sex(value)
    if kind == "date" or kind.endswith("_date"):
        return nz.parse_date(value)
    if kind == "postal_code":
        return nz.postal_code(value)
    if kind == "phone":
        return nz.phone(value)
    if kind == "address":
        return nz.address(value)
    if kind == "yes_no":
        v = nz.clean(value).lower()
        if v in ("1", "yes", "y", "有", "あり", "入院", "true"):
            return ids.YES, None
        if v in ("0", "no", "n", "無", "なし", "false"):
            return ids.NO, None
        return None, f"値「{value[:20]}」を有無に変換できません"
    return nz.text(value)


def _rows_to_facts(rows: list[dict[str, str]], profile: dict[str, Any], codes: LocalCodes, f: Facts) -> None:
    columns = profile.get("columns", {})
    for item, spec in columns.items():
        if item == ids.TESTS or not isinstance(spec, (dict, str)):
            continue
        spec = {"column": spec} if isinstance(spec, str) else spec
        kind = spec.get("type") or _TYPES.get(item) or ("date" if item.endswith("_date") else "text")
        values = []
        for r_i, row in enumerate(rows):
            v, col = _cell(row, spec)
            if v:
                values.append((v, col, r_i))
        if not values:
            continue
        prov = f"csv:{values[0][1]}"
        if kind == "icd10_list":
            sep = spec.get("split", ";")
            for v, col, _r in values:
                for code in (c.strip() for c in v.split(sep)):
                    if not code:
                        continue
                    if is_covid_confirmed(code):
                        continue
                    factor = risk_factor(code)
                    if factor:
                        f.conditions.append(Condition(factor, code, f"csv:{col}"))
            continue
        distinct = {v for v, _c, _r in values}
        if len(distinct) > 1:
            f.warn(f"{item}: 行によって値が異なるため転記しませんでした")
            continue
        value = values[0][0]
        if item in _DATE_EVENTS:
            d, w = nz.parse_date(value)
            f.warn(f"{item}: {w}" if w else None)
            if d:
                facts_list, make_event = _DATE_EVENTS[item]
                getattr(f, facts_list).append(make_event(d, prov))
        elif item == ids.REPORT_PHYSICIAN_NAME:
            name, w = nz.person_name(value)
            f.warn(f"{item}: {w}" if w else None)
            if name:
                f.physicians.append(Event("0000-01-01", prov, name, prov))
        elif item == ids.CARE_HOSPITALIZED:
            v, w = _convert(kind, value, spec)
            f.warn(f"{item}: {w}" if w else None)
            if v:
                f.items[item], f.provenance[item] = v, prov
        else:
            f.put(item, _convert(kind, value, spec), prov)
    tests = profile.get(ids.TESTS)
    if isinstance(tests, dict) and isinstance(tests.get("columns"), dict):
        _tests(rows, tests, codes, f)


def _tests(rows: list[dict[str, str]], spec: dict[str, Any], codes: LocalCodes, f: Facts) -> None:
    cols: dict[str, str] = spec["columns"]
    long = spec.get("layout") == "long"
    slots = [None] if long else list(range(1, int(spec.get("slots", 4)) + 1))
    for r_i, row in enumerate(rows):
        for n in slots:
            def col(key: str, n: int | None = n) -> str:
                name = cols.get(key, "")
                return name.replace("{n}", str(n)) if n is not None else name

            def val(key: str, row: dict[str, str] = row, col: Any = col) -> str:
                return nz.clean(row.get(col(key))) if col(key) else ""

            lab = val("method")
            if not lab:
                continue
            method = codes.method(lab, lab)
            if not method:
                continue  # not a SARS-CoV-2 test of this hospital's table
            prov = {"method": f"csv:{col('method')}"}
            specimen = codes.specimen_of(val("specimen"), val("specimen")) if val("specimen") else None
            if specimen:
                prov["specimen"] = f"csv:{col('specimen')}"
            elif val("specimen"):
                f.warn(f"{ids.TESTS}: 院内コード表にない検体コードのため検体を転記しませんでした")
            coll, w1 = nz.parse_date(val("collection_date"))
            if coll:
                prov["collection_date"] = f"csv:{col('collection_date')}"
            result = parse_result(val("result"))
            if result:
                prov["result"] = f"csv:{col('result')}"
            elif val("result"):
                f.warn(f"{ids.TESTS}: 検査結果「{val('result')[:20]}」を陽性・陰性に判定できないため結果を転記しませんでした")
            rdate, w2 = nz.parse_date(val("result_date"))
            if rdate and result != ids.RESULT_PENDING:
                prov["result_date"] = f"csv:{col('result_date')}"
            else:
                rdate = None
            for w in (w1, w2):
                f.warn(f"{ids.TESTS}: {w}" if w else None)
            f.tests.append(Test(method, specimen, coll, result, rdate, prov,  # type: ignore[arg-type]
                                key=f"row{r_i}-{n}"))


def read_rows(data: bytes | str, profile: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_BYTES:
            return [], "CSVが大きすぎます"
        text = _decode(bytes(data), str(profile.get("encoding", "auto")))
        if text is None:
            return [], "CSVの文字コードを判別できません"
    elif isinstance(data, str):
        text = data
    else:
        return [], "CSVデータの型が不正です"
    delim = profile.get("delimiter", ",")
    delim = "\t" if delim in ("\\t", "tab") else (delim if isinstance(delim, str) and len(delim) == 1 else ",")
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delim)
        rows = [{(k or "").strip(): (v if isinstance(v, str) else "") for k, v in r.items()} for r in reader]
    except csv.Error as exc:
        return [], f"CSVとして読めません（{exc}）"
    return rows, None


def extract_csv_patients(data: bytes | str, local_codes: Any = None,
                         profile: str | os.PathLike[str] | dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """All patients of a CSV export: {patient id: result}."""
    prof, err = load_profile(profile)
    if prof is None:
        return {"": {**empty_result(err or "プロファイルがありません"), "error": err}}
    rows, err = read_rows(data, prof)
    if err:
        return {"": {**empty_result(err), "error": err}}
    pid_col = prof.get("patient_id")
    groups: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(nz.clean(r.get(pid_col)) if isinstance(pid_col, str) else "", []).append(r)
    return {pid: extract_csv(g, local_codes, prof) for pid, g in groups.items()}


def extract_csv(data: bytes | str | list[dict[str, str]], local_codes: Any = None,
                profile: str | os.PathLike[str] | dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract ONE patient's items from a DWH CSV export (several rows of the same patient are merged).
    Never raises."""
    try:
        prof, err = load_profile(profile)
        if prof is None:
            return {**empty_result(err or "プロファイルがありません"), "error": err}
        codes = load_local_codes(local_codes)
        if isinstance(data, list):
            rows = data
        else:
            rows, err = read_rows(data, prof)
            if err:
                return {**empty_result(err), "error": err}
        f = Facts()
        for e in codes.errors:
            f.warn(e)
        if not rows:
            f.warn("CSVにデータ行がありません")
            return finalize(f)
        pid_col = prof.get("patient_id")
        if isinstance(pid_col, str):
            patient_ids = {nz.clean(r.get(pid_col)) for r in rows}
            if len(patient_ids) > 1:
                msg = "CSVに複数の患者が含まれています（患者ごとに分けてください）"
                return {**empty_result(msg), "error": msg}
        missing = [c for c in _profile_columns(prof) if c not in rows[0]]
        if missing:
            f.warn("CSVにプロファイルの列がありません: " + "、".join(missing[:5]))
        _rows_to_facts(rows, prof, codes, f)
        return finalize(f)
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never crashes the caller
        return empty_result(f"CSVを処理できませんでした（{type(exc).__name__}）")


def _profile_columns(prof: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for spec in prof.get("columns", {}).values():
        spec = {"column": spec} if isinstance(spec, str) else spec
        if isinstance(spec, dict):
            out += [c for c in ([spec.get("column")] + list(spec.get("columns", []))) if isinstance(c, str)]
    tests = prof.get(ids.TESTS)
    if isinstance(tests, dict) and isinstance(tests.get("columns"), dict):
        for c in tests["columns"].values():
            if isinstance(c, str):
                out.append(c.replace("{n}", "1"))
    return out
