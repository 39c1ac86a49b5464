"""FHIR R4 bundles (JP Core) → HER-SYS items, by plain dict access (lenient: real bundles are not always valid)."""

from __future__ import annotations

import json
from typing import Any

from vocabulary import ids

from . import normalize as nz
from .assemble import Condition, Diagnosis, Event, Facts, Test, empty_result, finalize
from .codes import (
    GUARDIAN_TEXT,
    LocalCodes,
    icd10_norm,
    is_covid_clinical,
    is_covid_confirmed,
    is_covid_name,
    load_local_codes,
    parse_interpretation,
    parse_result,
    risk_factor,
)

MAX_BYTES = 50 * 1024 * 1024
REPRESENTATION_URL = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_REPRESENTATION_TAIL = REPRESENTATION_URL.lower().split("://")[-1]
_INPATIENT = {"IMP", "ACUTE", "NONAC", "inpatient"}
_VISIT = {"AMB", "EMER", "outpatient", "ambulatory", "emergency"}
_SKIP_STATUS = {"cancelled", "entered-in-error", "planned"}
_GUARDIAN_CODES = {"GUARD", "PRN", "MTH", "FTH", "NMTH", "NFTH", "PAR", "GRD"}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else ([] if x is None else [x])


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _s(x: Any) -> str:
    return nz.clean(x) if isinstance(x, (str, int, float)) else ""


def _codings(cc: Any) -> list[dict[str, Any]]:
    return [c for c in _list(_dict(cc).get("coding")) if isinstance(c, dict)]


def _ref_key(ref: Any) -> str:
    return _s(_dict(ref).get("reference"))


class _Bundle:
    def __init__(self, data: dict[str, Any]) -> None:
        self.resources: list[dict[str, Any]] = []
        self.index: dict[str, dict[str, Any]] = {}
        self._collect(data, depth=0)

    def _collect(self, res: dict[str, Any], depth: int) -> None:
        if depth > 3:
            return
        if res.get("resourceType") == "Bundle":
            for e in _list(res.get("entry")):
                r = _dict(_dict(e).get("resource"))
                if r:
                    full = _s(_dict(e).get("fullUrl"))
                    if full:
                        self.index[full] = r
                    self._collect(r, depth + 1)
            return
        rt, rid = _s(res.get("resourceType")), _s(res.get("id"))
        if not rt:
            return
        self.resources.append(res)
        if rid:
            self.index[f"{rt}/{rid}"] = res
    def of(self, rt: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("resourceType") == rt]

    def get(self, ref: Any, container: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Resolve a reference: '#id' within the container's contained resources (local to that resource: every
        Observation may call its specimen '#sp'), else fullUrl, Type/id, or an absolute URL's Type/id."""
        key = _ref_key(ref)
        if not key:
            return None
        if key.startswith("#"):
            for c in _list((container or {}).get("contained")):
                if isinstance(c, dict) and _s(c.get("id")) == key[1:]:
                    return c
            return None
        if key in self.index:
            return self.index[key]
        tail = "/".join(key.split("/")[-2:])  # absolute URL → Type/id
        return self.index.get(tail)


def _representation(name: dict[str, Any]) -> str:
    for ext in _list(name.get("extension")):
        # vendors write the URL with other casing or https
        if isinstance(ext, dict) and _s(ext.get("url")).lower().split("://")[-1] == _REPRESENTATION_TAIL:
            return _s(ext.get("valueCode")).upper()
    return ""


def _name_parts(name: dict[str, Any]) -> tuple[str, str]:
    family = _s(name.get("family"))
    given = "".join(_s(g) for g in _list(name.get("given"))[:1]) + "".join(
        " " + _s(g) for g in _list(name.get("given"))[1:])
    if family or given:
        return family, given
    return _s(name.get("text")), ""


def _names(names: Any, f: Facts, item: str | None, item_kana: str | None, prov: str) -> None:
    usable = [(i, n) for i, n in enumerate(_list(names)) if isinstance(n, dict)
              and _s(n.get("use")) not in ("old", "maiden", "nickname", "anonymous", "temp")]
    kanji = kana = alpha = None
    for i, n in usable:
        rep = _representation(n)
        fam, given = _name_parts(n)
        whole = fam + given
        if not whole:
            continue
        is_kana = rep == "SYL" or (rep not in ("IDE", "ABC") and nz.is_kana_text(whole) and not nz.has_kanji(whole))
        if is_kana:
            if kana is None:
                kana = (i, fam, given)
        elif rep == "ABC" or (rep != "IDE" and nz.is_alphabetic_name(whole)):
            if alpha is None:
                alpha = (i, fam, given)  # romaji: the name only when there is no ideographic one
        elif kanji is None:
            kanji = (i, fam, given)
    kanji = kanji or alpha
    if kanji is None and kana is not None and item and not item_kana:
        kanji = kana  # a contact's only name, written in kana, is still their name
    if item and kanji:
        f.put(item, nz.person_name(kanji[1], kanji[2]), f"{prov}[{kanji[0]}]")
    if item_kana and kana:
        f.put(item_kana, nz.kana_name(kana[1], kana[2]), f"{prov}[{kana[0]}]")


def _address(addr: dict[str, Any]) -> str:
    text = _s(addr.get("text"))
    if text:
        return text
    lines = [_s(x) for x in _list(addr.get("line"))]
    return nz.join_address([_s(addr.get("state")), _s(addr.get("city")), _s(addr.get("district")), *lines])


def _pick_by_use(entries: list[Any], prefs: tuple[str, ...], exclude: tuple[str, ...] = ("old",)) \
        -> tuple[int, dict[str, Any]] | None:
    cands = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and _s(e.get("use")) not in exclude
             and not _dict(e.get("period")).get("end")]
    if not cands:
        return None
    cands.sort(key=lambda ie: prefs.index(_s(ie[1].get("use"))) if _s(ie[1].get("use")) in prefs else len(prefs))
    return cands[0]


def _patient(f: Facts, pat: dict[str, Any]) -> None:
    _names(pat.get("name"), f, ids.PATIENT_NAME, ids.PATIENT_NAME_KANA, "fhir:Patient.name")
    gender = _s(pat.get("gender"))
    if gender:
        f.put(ids.PATIENT_SEX, nz.sex(gender), "fhir:Patient.gender")
    if pat.get("birthDate"):
        f.put(ids.PATIENT_BIRTH_DATE, nz.parse_date(_s(pat.get("birthDate"))), "fhir:Patient.birthDate")
    addrs = _list(pat.get("address"))
    hit = _pick_by_use(addrs, ("home", "", "temp"), exclude=("old", "work", "billing"))  # 住所: where they live
    if hit:
        i, a = hit
        text = _address(a)
        if text:
            f.put(ids.PATIENT_ADDRESS, nz.address(text), f"fhir:Patient.address[{i}]")
        if a.get("postalCode"):
            f.put(ids.PATIENT_POSTAL_CODE, nz.postal_code(_s(a.get("postalCode"))),
                  f"fhir:Patient.address[{i}].postalCode")
    phones = [t if isinstance(t, dict) and _s(t.get("system")) in ("phone", "") and t.get("value") else {}
              for t in _list(pat.get("telecom"))]
    hit = _pick_by_use([p if p else None for p in phones], ("home", "mobile", "", "work"))
    if hit:
        i, t = hit
        f.put(ids.PATIENT_PHONE, nz.phone(_s(t.get("value"))), f"fhir:Patient.telecom[{i}]")
    if pat.get("deceasedDateTime"):
        f.put(ids.CLINICAL_DEATH_DATE, nz.parse_date(_s(pat.get("deceasedDateTime"))), "fhir:Patient.deceasedDateTime")
    elif pat.get("deceasedBoolean") is True:
        f.warn(f"{ids.CLINICAL_DEATH_DATE}: 死亡の記録はありますが日付がないため転記しませんでした")
    for ci, c in enumerate(_list(pat.get("contact"))):
        c = _dict(c)
        rels = _list(c.get("relationship"))
        codes = {_s(cd.get("code")).upper() for r in rels for cd in _codings(r)}
        texts = {_s(_dict(r).get("text")).lower() for r in rels} | {
            _s(cd.get("display")).lower() for r in rels for cd in _codings(r)}
        tmp = Facts()
        _names([c.get("name")] if isinstance(c.get("name"), dict) else [], tmp, ids.PATIENT_GUARDIAN_NAME, None,
               f"fhir:Patient.contact[{ci}].name")
        if not tmp.items:
            continue
        if not (codes & _GUARDIAN_CODES or texts & GUARDIAN_TEXT):
            if not codes and not (texts - {""}):
                f.suggestions.setdefault(ids.PATIENT_GUARDIAN_NAME, {
                    "value": tmp.items[ids.PATIENT_GUARDIAN_NAME],
                    "reason": "連絡先に続柄の記載がないため、保護者かどうか確認してください"})
            continue
        f.items[ids.PATIENT_GUARDIAN_NAME] = tmp.items[ids.PATIENT_GUARDIAN_NAME]
        f.provenance[ids.PATIENT_GUARDIAN_NAME] = f"fhir:Patient.contact[{ci}].name"
        addr = _dict(c.get("address"))
        if addr and _address(addr):
            f.put(ids.PATIENT_GUARDIAN_ADDRESS, nz.address(_address(addr)), f"fhir:Patient.contact[{ci}].address")
        break


def _practitioner_name(b: _Bundle, ref: Any, container: dict[str, Any] | None = None) -> str | None:
    pr = b.get(ref, container)
    if pr is None:
        disp = _s(_dict(ref).get("display"))
        return nz.person_name(disp)[0] if disp else None  # type: ignore[return-value]
    if pr.get("resourceType") == "PractitionerRole":
        pr = b.get(pr.get("practitioner"), pr) or {}
    tmp = Facts()
    _names(pr.get("name"), tmp, "x", None, "x")
    return tmp.items.get("x")


def _date(value: Any) -> str | None:
    return nz.parse_date(_s(value))[0]  # type: ignore[return-value]


def _encounters(f: Facts, b: _Bundle) -> None:
    for i, e in enumerate(b.of("Encounter")):
        status = _s(e.get("status"))
        if status in _SKIP_STATUS:
            continue
        cls_raw = e.get("class")
        cls_list = _list(cls_raw)
        code = ""
        for c in cls_list:  # R4 Coding, or CodeableConcept(s) as later versions write it
            c = _dict(c)
            code = _s(c.get("code")) or next((_s(cd.get("code")) for cd in _codings(c) if cd.get("code")), "")
            if code:
                break
        period = _dict(e.get("period"))
        start = _date(period.get("start"))
        doc = None
        for p in _list(e.get("participant")):
            p = _dict(p)
            types = {_s(cd.get("code")).upper() for t in _list(p.get("type")) for cd in _codings(t)}
            name = _practitioner_name(b, p.get("individual"), e)
            if name and (doc is None or "ATND" in types):
                doc = name
        eid = _s(e.get("id")) or str(i)
        prov = f"fhir:Encounter/{eid}.period.start"
        if code in _INPATIENT:
            if start:
                f.admissions.append(Event(start, prov, doc, f"fhir:Encounter/{eid}.participant"))
            end = _date(period.get("end"))
            if end and status == "finished":
                f.discharges.append(Event(end, f"fhir:Encounter/{eid}.period.end", admit_date=start))
        elif code in _VISIT and start:
            f.visits.append(Event(start, prov, doc, f"fhir:Encounter/{eid}.participant"))


def _conditions(f: Facts, b: _Bundle) -> None:
    for i, c in enumerate(b.of("Condition")):
        ver = {_s(cd.get("code")) for cd in _codings(c.get("verificationStatus"))}
        if ver & {"refuted", "entered-in-error"}:
            continue
        # Japanese 標準病名 modifiers put 「疑い」/「除外」 into the name while the ICD-10 code stays U07.1
        names = " ".join([_s(_dict(c.get("code")).get("text"))] + [_s(cd.get("display")) for cd in
                                                                     _codings(c.get("code"))]).upper()
        if any(x in names for x in ("除外", "否定", "RULED OUT")):
            continue
        suspected = bool(ver & {"provisional", "differential", "unconfirmed"}) or any(
            x in names for x in ("疑", "SUSPECT", "可能性"))
        clin = {_s(cd.get("code")) for cd in _codings(c.get("clinicalStatus"))}
        resolved = bool(clin & {"resolved", "inactive", "remission"}) or bool(c.get("abatementDateTime"))
        cid = _s(c.get("id")) or str(i)
        icd = [cd for cd in _codings(c.get("code")) if icd10_norm(_s(cd.get("code"))) and (
            not _s(cd.get("system")) or any(x in _s(cd.get("system")).lower()
                                            for x in ("icd-10", "icd10", "2.16.840.1.113883.6.3")))]
        if not icd and any(is_covid_name(x) for x in [_dict(c.get("code")).get("text")] + [
                cd.get("display") for cd in _codings(c.get("code"))]):
            # the disease name 「COVID-19」 without an ICD-10 code: the 標準病名 of U07.1
            icd = [{"code": "U07.1"}]
            f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: 病名「COVID-19」にICD-10コードがないため病名から判断しました。確認してください")
        for cd in icd:
            code = _s(cd.get("code"))
            if is_covid_confirmed(code):
                recorded = c.get("recordedDate")
                for role in ("asserter", "recorder"):
                    name = _practitioner_name(b, c.get(role), c) if c.get(role) else None
                    if name:
                        f.physicians.append(Event(_date(recorded) or "0000-01-01", f"fhir:Condition/{cid}.{role}",
                                                  name, f"fhir:Condition/{cid}.{role}"))
                        break
                d, w = nz.parse_date(_s(recorded)) if recorded else (None, None)
                if w:
                    f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: {w}")
                if not recorded:
                    f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: COVID-19の病名に記録日（recordedDate）がないため診断日を転記しませんでした")
                f.diagnoses.append(Diagnosis(d, f"fhir:Condition/{cid}.recordedDate", suspected))  # type: ignore[arg-type]
                break
            if is_covid_clinical(code):
                f.diagnoses.append(Diagnosis(None, f"fhir:Condition/{cid}.code", True))
                break
            factor = risk_factor(code)
            if factor:
                f.conditions.append(Condition(factor, code, f"fhir:Condition/{cid}.code", resolved or suspected))
                break


def _obs_result(o: dict[str, Any]) -> tuple[str | None, str]:
    if _s(o.get("status")) == "registered":
        return ids.RESULT_PENDING, "status"
    found: set[str] = set()
    vcc = o.get("valueCodeableConcept")
    if isinstance(vcc, dict):
        for cd in _codings(vcc):
            for v in (cd.get("code"), cd.get("display")):
                r = parse_result(_s(v))
                if r:
                    found.add(r)
        r = parse_result(_s(vcc.get("text")))
        if r:
            found.add(r)
    if o.get("valueString"):
        r = parse_result(_s(o.get("valueString")))
        if r:
            found.add(r)
    interp = {parse_interpretation(_s(cd.get("code"))) for i in _list(o.get("interpretation")) for cd in _codings(i)}
    interp.discard(None)
    if len(found) == 1:
        if interp and interp != found:
            return None, "value"   # the value and its interpretation contradict each other
        return found.pop(), "valueCodeableConcept" if vcc else "valueString"
    if len(found) > 1:
        return None, "value"
    if len(interp) == 1:
        return interp.pop(), "interpretation"
    return None, "value"


def _observations(f: Facts, b: _Bundle, codes: LocalCodes) -> None:
    issued_by_dr: dict[int, str] = {}
    for dr in b.of("DiagnosticReport"):
        for ref in _list(dr.get("result")):
            o = b.get(ref, dr)
            if o is not None and dr.get("issued"):
                issued_by_dr[id(o)] = _s(dr.get("issued"))
    for i, o in enumerate(b.of("Observation")):
        status = _s(o.get("status"))
        if status in ("cancelled", "entered-in-error"):
            continue
        method = None
        for cd in _codings(o.get("code")):
            method = codes.method(_s(cd.get("code")), _s(cd.get("display")))
            if method:
                break
        if not method:
            continue
        oid = _s(o.get("id")) or str(i)
        base = f"fhir:Observation/{oid}"
        prov = {"method": f"{base}.code"}
        spec_res = b.get(o.get("specimen"), o)
        specimen = None
        coll = None
        disp = _s(_dict(o.get("specimen")).get("display"))
        if spec_res is None and disp:
            # no Specimen resource, only its name: the exactly registered specimen name of the local code table
            specimen = codes.specimen_of("", disp)
            if specimen:
                prov["specimen"] = f"{base}.specimen.display"
        if spec_res is not None:
            sid = _s(spec_res.get("id"))
            for cd in _codings(spec_res.get("type")):
                specimen = codes.specimen_of(_s(cd.get("code")), _s(cd.get("display")))
                if specimen:
                    prov["specimen"] = f"fhir:Specimen/{sid}.type"
                    break
            col = _dict(spec_res.get("collection"))
            coll = _date(col.get("collectedDateTime")) or _date(_dict(col.get("collectedPeriod")).get("start"))
            if coll:
                prov["collection_date"] = f"fhir:Specimen/{sid}.collection.collectedDateTime"
        if specimen is None:
            f.warn(f"{ids.TESTS}: 院内コード表にない検体、または検体の記録がないため検体を転記しませんでした")
        if coll is None:
            coll = _date(o.get("effectiveDateTime")) or _date(_dict(o.get("effectivePeriod")).get("start"))
            if coll:
                prov["collection_date"] = f"{base}.effectiveDateTime"
        result, where = _obs_result(o)
        if result:
            prov["result"] = f"{base}.{where}"
        else:
            f.warn(f"{ids.TESTS}: 検査結果を陽性・陰性に判定できないため結果を転記しませんでした")
        rdate = None
        if result != ids.RESULT_PENDING:
            issued = o.get("issued") or issued_by_dr.get(id(o))
            rdate = _date(issued)
            if rdate:
                prov["result_date"] = f"{base}.issued"
        f.tests.append(Test(method, specimen, coll, result, rdate, prov, key=base, stamp=_s(o.get("issued")),
                            preliminary=status == "preliminary"))


def _choose_patient(b: _Bundle, f: Facts) -> dict[str, Any] | None:
    pats = b.of("Patient")
    if not pats:
        f.warn("Patientリソースがありません")
        return None
    if len(pats) == 1:
        return pats[0]
    refs: dict[str, int] = {}
    for r in b.resources:
        key = _ref_key(r.get("subject") or r.get("patient"))
        if key:
            refs[key] = refs.get(key, 0) + 1
    ranked = sorted(pats, key=lambda p: -refs.get(f"Patient/{_s(p.get('id'))}", 0))
    if refs.get(f"Patient/{_s(ranked[0].get('id'))}", 0) > refs.get(f"Patient/{_s(ranked[1].get('id'))}", 0):
        f.warn("Patientが複数あります。診療記録が参照している患者を使用しました")
        return ranked[0]
    f.warn("Patientが複数あり対象患者を特定できないため、患者情報を転記しませんでした")
    return None


def extract_fhir(data: bytes | str | dict[str, Any], local_codes: Any = None) -> dict[str, Any]:
    """Extract items from one FHIR R4 bundle (bytes, JSON text or parsed dict). Never raises."""
    try:
        return _extract(data, load_local_codes(local_codes))
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never crashes the caller
        return empty_result(f"FHIRデータを処理できませんでした（{type(exc).__name__}）")


def parse_json(data: bytes | str | dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(data, dict):
        return data, None
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_BYTES:
            return None, "FHIRデータが大きすぎます"
        for enc in ("utf-8-sig", "cp932"):
            try:
                data = bytes(data).decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            return None, "FHIRデータの文字コードを判別できません（UTF-8ではありません）"
    if not isinstance(data, str):
        return None, "FHIRデータの型が不正です"
    if len(data) > MAX_BYTES:
        return None, "FHIRデータが大きすぎます"
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return None, f"JSONとして読めません（{str(exc)[:80]}）"
    if not isinstance(obj, dict) or "resourceType" not in obj:
        return None, "FHIRリソースではありません（resourceTypeがありません）"
    return obj, None


def _extract(data: bytes | str | dict[str, Any], codes: LocalCodes) -> dict[str, Any]:
    obj, err = parse_json(data)
    if obj is None:
        res = empty_result(err or "FHIRデータを読めません")
        res["error"] = err
        return res
    f = Facts()
    for e in codes.errors:
        f.warn(e)
    b = _Bundle(obj)
    pat = _choose_patient(b, f)
    if pat is not None:
        _patient(f, pat)
        # resources about another patient are not this patient's facts (subject by Type/id, absolute URL or
        # urn:uuid fullUrl; a subject that resolves to nothing in the bundle is judged by its Type/id)
        pid = _s(pat.get("id"))

        def about_patient(r: dict[str, Any]) -> bool:
            key = _ref_key(r.get("subject") or r.get("patient"))
            if r.get("resourceType") == "Patient" or not key:
                return True
            target = b.get(r.get("subject") or r.get("patient"))
            if target is not None:
                return target is pat or (bool(pid) and target.get("resourceType") == "Patient"
                                         and _s(target.get("id")) == pid)
            return bool(pid) and key.split("/")[-2:] == ["Patient", pid]
        b.resources = [r for r in b.resources if about_patient(r)]
    _encounters(f, b)
    _conditions(f, b)
    _observations(f, b, codes)
    return finalize(f)
