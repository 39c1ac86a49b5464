"""SS-MIX2 standard storage (HL7 v2.5) → HER-SYS items.

A patient folder is ``<id>/<date>/<type>/<file>``; file names are
``<patientid>_<date>_<datatype>_<order no>_<timestamp>_<dept>_<condition flag>``; flag 0 marks a cancelled or
deleted record, which is ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
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
from .hl7v2 import Message, Segment, parse_bytes

MAX_FILES = 20000
MAX_TOTAL_BYTES = 200 * 1024 * 1024

# MSH-9 trigger → SS-MIX2 data type, for files whose name does not say it
_TRIGGER_TYPE = {"A08": "ADT-00", "A31": "ADT-00", "A28": "ADT-00", "A04": "ADT-12", "A01": "ADT-22",
                 "A03": "ADT-52", "ZD1": "PPR-01", "R22": "OML-11", "R01": "OML-11", "O33": "OML-11",
                 "O21": "OML-11"}
_CANCEL_TRIGGERS = {"A11", "A13", "A12", "A27", "A38", "A23", "A29", "A25", "A26", "A33", "A32"}
_ICD_SYSTEMS = {"I10", "ICD10", "ICD-10", "I10-2013", "ICD10-2013", "I10P", "ICD10JP"}
_GUARDIAN_REL = {"GRD", "MTH", "FTH", "PAR"}


@dataclass
class FileMeta:
    rel: str
    patient_id: str = ""
    date: str = ""
    datatype: str = ""
    order: str = ""
    timestamp: str = ""
    dept: str = ""
    flag: str = ""
    named: bool = False


# copies that editors, backup tools and file managers leave next to the real files: never read
_JUNK_NAME = re.compile(r"(?i)(\.(bak|tmp|temp|old|orig|swp|sav|part|crdownload|lock)|~|\.\d+)$|^(thumbs\.db|desktop\.ini"
                        r"|readme(\.\w+)?|~\$.*)$")
# suffixes some exporters give the standard file names (the condition flag is the part before them)
_HL7_SUFFIX = re.compile(r"(?i)\.(hl7|txt|dat|msg|er7)$")


def is_junk_name(rel: str) -> bool:
    return bool(_JUNK_NAME.search(re.split(r"[\\/]", rel)[-1]))


def parse_name(rel: str) -> FileMeta:
    base = _HL7_SUFFIX.sub("", re.split(r"[\\/]", rel)[-1])
    parts = base.split("_")
    meta = FileMeta(rel=rel)
    if len(parts) >= 7:
        meta.patient_id, meta.date, meta.datatype = parts[0], parts[1], parts[2].upper()
        meta.flag, meta.dept, meta.timestamp = parts[-1], parts[-2], parts[-3]
        meta.order = "_".join(parts[3:-3])
        meta.named = bool(re.fullmatch(r"[A-Z]{3}-\d{2}", meta.datatype))
    return meta


def _xpn_reps(seg: Segment, n: int) -> list[tuple[list[str], str]]:
    """(components, representation code I/P/A or '') per repetition of an XPN field."""
    out = []
    for r in range(len(seg.reps(n))):
        cs = seg.comps(n, r)
        rep = (cs[7] if len(cs) > 7 else "").strip().upper()
        out.append((cs, rep))
    return out


def _name_from_xpn(seg: Segment, n: int, prov: str, f: Facts, item_name: str | None,
                   item_kana: str | None) -> None:
    kanji: tuple[list[str], str] | None = None
    kana: tuple[list[str], str] | None = None
    alpha: tuple[list[str], str] | None = None
    for cs, rep in _xpn_reps(seg, n):
        fam, given = (cs + ["", ""])[:2]
        whole = fam + given
        if not whole.strip():
            continue
        is_kana = rep == "P" or (rep not in ("I", "A") and nz.is_kana_text(whole) and not nz.has_kanji(whole))
        if is_kana:
            if kana is None:
                kana = (cs, rep)
        elif rep == "A" or (rep != "I" and nz.is_alphabetic_name(whole)):
            if alpha is None:
                alpha = (cs, rep)   # romaji: the name only when there is no ideographic (kanji) repetition
        elif kanji is None:
            kanji = (cs, rep)
    kanji = kanji or alpha
    if item_name and kanji:
        cs = kanji[0] + ["", ""]
        f.put(item_name, nz.person_name(cs[0], cs[1]), prov)
    if item_kana and kana:
        cs = kana[0] + ["", ""]
        f.put(item_kana, nz.kana_name(cs[0], cs[1]), prov)


def _doctor(seg: Segment, n: int, doctor_ids: dict[str, str] | None = None) -> str | None:
    """XCN (ID^family^given^...; name representation code in component 15) → kanji name. A repetition with only
    the ID is resolved through `doctor_ids` (the same ID with a name elsewhere in the patient's messages)."""
    best = None
    for r in range(len(seg.reps(n))):
        cs = seg.comps(n, r) + [""] * 15
        fam, given = cs[1], cs[2]
        if not (fam + given).strip():
            continue
        name, _w = nz.person_name(fam, given)
        if not name:
            continue
        rep = (cs[14] or cs[8]).strip().upper()
        if rep in ("P", "A") or (nz.is_kana_text(fam + given) and not nz.has_kanji(fam + given)):
            continue
        if rep != "I" and nz.is_alphabetic_name(fam + given):
            continue
        if best is None or rep == "I":
            best = name
    if best is None and doctor_ids:
        found = {doctor_ids[i] for r in range(len(seg.reps(n))) if (i := seg.get(n, 1, r).strip()) in doctor_ids}
        if len(found) == 1:
            best = found.pop()
    return best


_XCN_FIELDS = {"PV1": (7, 8, 9, 17), "OBR": (16, 32), "ORC": (12,), "PRB": (), "PV2": ()}


def _doctor_ids(docs: list[_Doc]) -> dict[str, str]:
    """Staff ID → kanji name, from every XCN with a name in the patient's messages (an ID with two different names
    is not used)."""
    names: dict[str, set[str]] = {}
    for d in docs:
        for seg in d.msg.segments:
            for n in _XCN_FIELDS.get(seg.name, ()):
                for r in range(len(seg.reps(n))):
                    i = seg.get(n, 1, r).strip()
                    if i and (name := _doctor_one(seg, n, r)):
                        names.setdefault(i, set()).add(name)
    return {i: next(iter(v)) for i, v in names.items() if len(v) == 1}


def _doctor_one(seg: Segment, n: int, r: int) -> str | None:
    cs = seg.comps(n, r) + [""] * 15
    rep = (cs[14] or cs[8]).strip().upper()
    whole = cs[1] + cs[2]
    if not whole.strip() or rep in ("P", "A") or (nz.is_kana_text(whole) and not nz.has_kanji(whole)):
        return None
    if rep != "I" and nz.is_alphabetic_name(whole):
        return None
    return nz.person_name(cs[1], cs[2])[0]  # type: ignore[return-value]


def _addr(seg: Segment, n: int) -> tuple[str | None, str | None, int]:
    """(address text, postal code, repetition) from an XAD field: home (H) first, then legal/current, then
    untyped. Work/office, birth-place, country-of-origin and bad addresses (HL7 table 0190: B, O, BDL, BR, N, F, BA)
    are not where the person lives and never become it."""
    reps = seg.reps(n)
    rank = {"H": 0, "L": 1, "C": 2, "P": 3, "RH": 4, "M": 5, "": 6}
    order = sorted((r for r in range(len(reps)) if seg.get(n, 7, r).strip().upper() in rank),
                   key=lambda r: rank[seg.get(n, 7, r).strip().upper()])
    for r in order:
        cs = seg.comps(n, r) + [""] * 8
        street, other, city, state, zip_ = cs[0], cs[1], cs[2], cs[3], cs[4]
        text = nz.join_address([state, city, street, other])
        if text or zip_:
            return text or None, zip_ or None, r
    return None, None, 0


def _phone(seg: Segment, n: int) -> tuple[str | None, int]:
    reps = seg.reps(n)
    order = sorted(range(len(reps)), key=lambda r: (
        {"PRN": 0, "ORN": 1, "": 2}.get(seg.get(n, 2, r).upper(), 3),
        {"PH": 0, "CP": 1, "": 1}.get(seg.get(n, 3, r).upper(), 5)))
    for r in order:
        if seg.get(n, 3, r).upper() in ("FX", "INTERNET", "X.400", "BP"):
            continue
        cs = seg.comps(n, r) + [""] * 12
        num = cs[11] or cs[0]
        if not num and (cs[5] or cs[6]):
            area = cs[5].strip()
            if cs[4].strip().lstrip("+") == "81" and area and not area.startswith("0"):
                area = "0" + area   # country code 81 with the area code without its trunk prefix 0
            num = "-".join(x for x in (area, cs[6].strip()) if x)
        if num.strip():
            return num, r
    return None, 0


def _coded(seg: Segment, n: int, lookup: Any) -> str | None:
    """Look a CWE field up by its identifier, then by its alternate identifier (components 4/5)."""
    return lookup(seg.get(n, 1), seg.get(n, 2)) or (lookup(seg.get(n, 4), seg.get(n, 5)) if seg.get(n, 4) else None)


def _date_of(seg: Segment, n: int, comp: int = 1) -> str | None:
    v, _w = nz.parse_date(seg.get(n, comp))
    return v  # type: ignore[return-value]


class _Doc:
    def __init__(self, meta: FileMeta, msg: Message) -> None:
        self.meta = meta
        self.msg = msg
        code, trig = msg.type
        self.trigger = trig
        self.datatype = meta.datatype if meta.named else _TRIGGER_TYPE.get(trig, "")
        msh = msg.msh
        ts = meta.timestamp if re.fullmatch(r"\d{8,}", meta.timestamp or "") else ""
        if not ts and msh is not None:
            ts = re.sub(r"\D", "", msh.get(7))
        self.stamp = (ts + "0" * 17)[:17]
        self.label = self.datatype or (f"{code}^{trig}" if code else "HL7")

    def prov(self, where: str) -> str:
        return f"ss-mix2:{self.label} {where}"


def _patient(f: Facts, docs: list[_Doc]) -> None:
    with_pid = [d for d in docs if d.msg.first("PID")]
    if not with_pid:
        f.warn("患者情報（PIDセグメント）が見つかりません")
        return
    adt00 = sorted((d for d in with_pid if d.datatype == "ADT-00"), key=lambda d: d.stamp)
    primary = adt00[-1] if adt00 else max(with_pid, key=lambda d: d.stamp)
    # fields the newest patient message leaves out are taken from messages at least as new (never older ones)
    newer = sorted((d for d in with_pid if d.stamp >= primary.stamp and d is not primary),
                   key=lambda d: d.stamp, reverse=True)
    sources = [primary, *newer]

    def first_with(n: int) -> tuple[_Doc, Segment] | None:
        for d in sources:
            pid = d.msg.first("PID")
            if pid is None:
                continue
            raw = pid.raw(n)
            if raw == '""':
                return None  # explicitly deleted in the newest message that has the field
            if raw.strip():
                return d, pid
        return None

    hit = first_with(5)
    if hit:
        d, pid = hit
        _name_from_xpn(pid, 5, d.prov("PID-5"), f, ids.PATIENT_NAME, ids.PATIENT_NAME_KANA)
        if ids.PATIENT_NAME_KANA not in f.items:
            # kana may only be present in another (not older) message
            for d2 in sources:
                p2 = d2.msg.first("PID")
                if p2 is not None and d2 is not d:
                    _name_from_xpn(p2, 5, d2.prov("PID-5"), f, None, ids.PATIENT_NAME_KANA)
                    if ids.PATIENT_NAME_KANA in f.items:
                        break
    if (hit := first_with(8)) is not None:
        d, pid = hit
        f.put(ids.PATIENT_SEX, nz.sex(pid.get(8)), d.prov("PID-8"))
    if (hit := first_with(7)) is not None:
        d, pid = hit
        f.put(ids.PATIENT_BIRTH_DATE, nz.parse_date(pid.get(7)), d.prov("PID-7"))
    if (hit := first_with(11)) is not None:
        d, pid = hit
        text, zip_, r = _addr(pid, 11)
        suffix = f"[{r}]" if r else ""
        f.put(ids.PATIENT_ADDRESS, nz.address(text), d.prov(f"PID-11{suffix}"))
        if zip_:
            f.put(ids.PATIENT_POSTAL_CODE, nz.postal_code(zip_), d.prov(f"PID-11{suffix}.5"))
        elif text:
            m = re.match(r"^〒?\s*([0-9０-９]{3}[-－ー−‐]?[0-9０-９]{4})\s", nz.clean(text))
            if m and nz.clean(text).startswith("〒"):
                f.put(ids.PATIENT_POSTAL_CODE, nz.postal_code(m.group(1)), d.prov(f"PID-11{suffix}"))
    if (hit := first_with(13)) is not None:
        d, pid = hit
        num, r = _phone(pid, 13)
        if num:
            f.put(ids.PATIENT_PHONE, nz.phone(num), d.prov(f"PID-13[{r}]" if r else "PID-13"))
    if (hit := first_with(29)) is not None:
        d, pid = hit
        if pid.get(30).upper() == "N":
            f.warn(f"{ids.CLINICAL_DEATH_DATE}: 死亡日がありますが死亡フラグがNのため転記しませんでした")
        else:
            f.put(ids.CLINICAL_DEATH_DATE, nz.parse_date(pid.get(29)), d.prov("PID-29"))

    # guardian (NK1): only a relationship that is a guardian/parent
    nk1s = [(d, s) for d in sources[:1] for s in d.msg.all("NK1")]
    if not nk1s:
        nk1s = [(d, s) for d in sources for s in d.msg.all("NK1")][:10]
    for d, nk1 in nk1s:
        rel_code, rel_text = nk1.get(3, 1).upper(), nk1.get(3, 2)
        is_guardian = rel_code in _GUARDIAN_REL or nz.clean(rel_text).lower() in GUARDIAN_TEXT
        tmp = Facts()
        _name_from_xpn(nk1, 2, d.prov("NK1-2"), tmp, ids.PATIENT_GUARDIAN_NAME, None)
        if not tmp.items:
            continue
        if not is_guardian:
            if not rel_code and not rel_text:
                f.suggestions.setdefault(ids.PATIENT_GUARDIAN_NAME, {
                    "value": tmp.items[ids.PATIENT_GUARDIAN_NAME],
                    "reason": "連絡先（NK1）に続柄の記載がないため、保護者かどうか確認してください"})
            continue
        f.items[ids.PATIENT_GUARDIAN_NAME] = tmp.items[ids.PATIENT_GUARDIAN_NAME]
        f.provenance[ids.PATIENT_GUARDIAN_NAME] = tmp.provenance[ids.PATIENT_GUARDIAN_NAME]
        text, _zip, r = _addr(nk1, 4)
        if text:
            f.put(ids.PATIENT_GUARDIAN_ADDRESS, nz.address(text), d.prov("NK1-4"))
        break


def _pv1_events(f: Facts, docs: list[_Doc]) -> None:
    """Visits (ADT-12), admissions (ADT-22) and discharges (ADT-52). Plans (ADT-21 A14, ADT-51 A16) are not events.
    A cancel message (A11 cancel admit/visit, A23 delete visit, A13 cancel discharge) removes the events of its
    kind and date recorded before it; when its date cannot be told, all of them (never keep a cancelled one)."""
    visits: list[tuple[Event, str]] = []
    admissions: list[tuple[Event, str]] = []
    discharges: list[tuple[Event, str]] = []
    cancels: list[tuple[str, str | None, str]] = []   # (kind, date or None = all, stamp)
    doctor_ids = _doctor_ids(docs)
    for d in docs:
        pv1 = d.msg.first("PV1")
        evn = d.msg.first("EVN")
        folder_date, _w = nz.parse_date(d.meta.date) if d.meta.date not in ("", "-") else (None, None)

        def when(n: int, label: str, pv1: Segment | None = pv1, evn: Segment | None = evn,
                 folder_date: Any = folder_date, d: _Doc = d) -> tuple[str | None, str]:
            if pv1 is not None and (v := _date_of(pv1, n)):
                return v, d.prov(f"PV1-{n}")
            if evn is not None and (v := _date_of(evn, 6)):
                return v, d.prov("EVN-6")
            if folder_date:
                return folder_date, d.prov("(保存フォルダの日付)")
            return None, d.prov(label)

        doc = _doctor(pv1, 7, doctor_ids) if pv1 is not None else None
        dprov = d.prov("PV1-7")
        if d.trigger in _CANCEL_TRIGGERS:
            pclass = pv1.get(2).upper() if pv1 is not None else ""
            if d.trigger in ("A11", "A23"):
                kind = "visit" if d.datatype == "ADT-12" or (d.datatype != "ADT-22" and pclass in ("O", "E")) \
                    else "admission"
                date_ = (_date_of(pv1, 44) if pv1 is not None else None) or folder_date
                cancels.append((kind, date_, d.stamp))
                if kind == "admission" and date_ is None:
                    f.admission_cancelled = True
            elif d.trigger == "A13":
                date_ = (_date_of(pv1, 45) if pv1 is not None else None) or folder_date
                cancels.append(("discharge", date_, d.stamp))
            continue
        if d.datatype == "ADT-12":
            v, p = when(44, "PV1-44")
            if v:
                visits.append((Event(v, p, doc, dprov), d.stamp))
        elif d.datatype == "ADT-22":
            v, p = when(44, "PV1-44")
            if v:
                admissions.append((Event(v, p, doc, dprov), d.stamp))
        elif d.datatype == "ADT-52":
            v, p = when(45, "PV1-45")
            adm = _date_of(pv1, 44) if pv1 is not None else None
            if v:
                discharges.append((Event(v, p, admit_date=adm), d.stamp))
            if adm:
                # a discharge message also dates the admission it closes
                admissions.append((Event(adm, d.prov("PV1-44"), doc, dprov, from_discharge=True), d.stamp))

    def alive(kind: str, ev: Event, stamp: str) -> bool:
        for k, date_, cstamp in cancels:
            if k == kind and (date_ is None or date_ == ev.date) and stamp <= cstamp:
                return False
        return True
    f.visits += [e for e, st in visits if alive("visit", e, st)]
    kept = [e for e, st in admissions if alive("admission", e, st)]
    f.admissions += [e for e in kept if not e.from_discharge
                     or not any(a.date == e.date for a in kept if not a.from_discharge)]
    f.discharges += [e for e, st in discharges if alive("discharge", e, st)
                     and (not e.admit_date or any(a.date == e.admit_date for a in kept) or not admissions)]
    if any(k == "admission" for k, _d, _s in cancels) and len(kept) < len(admissions):
        f.warn(f"{ids.CARE_ADMISSION_DATE}: 入院取消（A11）の記録があるため、取り消された入院は転記していません")


_RULED_OUT = ("除外", "否定", "RULED", "REFUT", "ERROR", "取消", "削除", "誤登録")
_SUSPECT = ("疑", "SUSP", "PROV", "DIFF", "可能性")


def _prb_text(prb: Segment, n: int) -> str:
    return "^".join(c for r in range(max(1, len(prb.reps(n)))) for c in prb.comps(n, r)).upper()


def _problems(f: Facts, docs: list[_Doc]) -> None:
    # the newest message about a problem instance (PRB-4) decides: a later DE/RE deletes it, a later UP replaces it
    latest: dict[str, tuple[str, int]] = {}
    entries: list[tuple[_Doc, Segment, str]] = []
    for d in docs:
        if d.datatype != "PPR-01" and d.msg.type[0] != "PPR":
            continue
        for prb in d.msg.all("PRB"):
            inst = prb.get(4).strip()
            key = f"{inst}|{icd10_norm(prb.get(3)) or prb.get(3)}" if inst else ""
            entries.append((d, prb, key))
            if key:
                i = len(entries) - 1
                if key not in latest or d.stamp >= latest[key][0]:
                    latest[key] = (d.stamp, i)
    for i, (d, prb, key) in enumerate(entries):
        if key and latest[key][1] != i:
            continue   # superseded by a newer message about the same problem
        action = prb.get(1).upper()
        if action in ("DE", "RE"):   # deleted / removed problem
            continue
        codes: list[str] = []
        for first in (1, 4):
            code, system = prb.get(3, first), prb.get(3, first + 2).upper().replace(" ", "")
            if code and (system in _ICD_SYSTEMS or not system):
                codes.append(code)
        if not any(icd10_norm(c) for c in codes) and (is_covid_name(prb.get(3, 2)) or is_covid_name(prb.get(3, 5))):
            codes = ["U071"]   # the disease name 「COVID-19」 without an ICD-10 code: the 標準病名 of U07.1
            f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: 病名「COVID-19」にICD-10コードがないため病名から判断しました。確認してください")
        status = _prb_text(prb, 13) + "^" + _prb_text(prb, 14)
        names = (prb.get(3, 2) + prb.get(3, 5)).upper()
        if any(x in status or x in names for x in _RULED_OUT) or prb.get(13).upper() in ("R", "RO", "X", "E"):
            continue   # ruled out (除外) or entered in error: not a diagnosis, not even a suspicion
        suspected = any(x in status or x in names for x in _SUSPECT) or prb.get(13).upper() in ("P", "S")
        resolved = bool(prb.get(9).strip()) or any(x in _prb_text(prb, 14) for x in ("RESOLV", "INACT", "治癒"))
        for code in codes:
            if is_covid_confirmed(code):
                date_, w = nz.parse_date(prb.get(7))
                prov = d.prov("PRB-7")
                if w:
                    f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: {w}")
                elif date_ is None and re.fullmatch(r"\d{8}", d.meta.date):
                    # the storage folder of a PPR-01 record is the problem's start date
                    date_, _w = nz.parse_date(d.meta.date)
                    prov = d.prov("(保存フォルダの日付)")
                    f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: 病名開始日（PRB-7）がないため保存フォルダの日付を転記しました。確認してください")
                f.diagnoses.append(Diagnosis(date_, prov, suspected))  # type: ignore[arg-type]
                break
            if is_covid_clinical(code):
                f.diagnoses.append(Diagnosis(None, d.prov("PRB-3"), True))
                break
            factor = risk_factor(code)
            if factor:
                f.conditions.append(Condition(factor, code, d.prov("PRB-3"), resolved or suspected))
                break


def _tests(f: Facts, docs: list[_Doc], codes: LocalCodes) -> None:
    for d in docs:
        if d.datatype not in ("OML-11", "OUL-11") and d.msg.type[0] not in ("OUL", "OML", "ORU"):
            continue
        spm: Segment | None = None
        obr: Segment | None = None
        orc: Segment | None = None
        groups: list[tuple[Segment | None, Segment | None, Segment | None, list[Segment]]] = []
        for seg in d.msg.segments:
            if seg.name == "SPM":
                spm, obr, orc = seg, None, None
            elif seg.name == "ORC":
                orc = seg
            elif seg.name == "OBR":
                obr = seg
                groups.append((spm, obr, orc, []))
            elif seg.name == "OBX":
                if not groups or groups[-1][1] is not obr:
                    groups.append((spm, obr, orc, []))
                groups[-1][3].append(seg)
        for gi, (spm_, obr_, orc_, obxs) in enumerate(groups):
            prefix = f"{d.meta.order or '-'}|{obr_.get(2) if obr_ is not None else gi}|"
            if (orc_ is not None and orc_.get(1).upper() in ("CA", "OC", "CR", "DC")) or \
                    (obr_ is not None and obr_.get(25).upper() == "X"):
                # the order is cancelled: so is whatever an earlier file of the same order reported
                f.tests.append(Test(None, None, None, None, None, key=prefix + "*", stamp=d.stamp, cancelled=True))
                continue
            order_method = _coded(obr_, 4, codes.method) if obr_ is not None else None
            hits: list[tuple[Segment, str]] = []
            for obx in obxs:
                m = _coded(obx, 3, codes.method)
                if m:
                    hits.append((obx, m))
            if not hits and order_method:
                readable = [o for o in obxs if _obx_result(o)[0]]
                if len(readable) == 1:
                    hits = [(readable[0], order_method)]
            by_code: dict[str, list[tuple[Segment, str]]] = {}
            for obx, m in hits:
                by_code.setdefault(obx.get(3), []).append((obx, m))
            for code, cands in by_code.items():
                key = prefix + code
                picked = _pick_obx(cands)
                if picked is None:   # every result of this analyte cancelled (OBX-11 X/D/W)
                    f.tests.append(Test(None, None, None, None, None, key=key, stamp=d.stamp, cancelled=True))
                    continue
                obx, method, conflict = picked
                t = _make_test(d, spm_, obr_, obx, method, codes, f)
                if t:
                    if conflict:
                        t.result, t.result_date = None, None
                        t.prov.pop("result", None)
                        t.prov.pop("result_date", None)
                        f.warn(f"{ids.TESTS}: 同じ検査項目に矛盾する結果があるため結果を転記しませんでした")
                    t.key = key
                    t.preliminary = obx.get(11).upper() in ("P", "R", "S", "A")
                    f.tests.append(t)


_OBX_STATUS_RANK = {"C": 0, "F": 1, "": 2, "P": 3, "R": 3, "S": 3, "A": 3, "I": 4}


def _pick_obx(cands: list[tuple[Segment, str]]) -> tuple[Segment, str, bool] | None:
    """The OBX that stands for one analyte of an order: cancelled ones (X/D/W) never; corrected (C) before final
    before preliminary; among those, a readable result (a Ct value or a comment under the same code does not erase
    the qualitative result). (obx, method, conflicting readable results?) or None if all are cancelled."""
    live = [(o, m) for o, m in cands if o.get(11).upper() not in ("X", "D", "W")]
    if not live:
        return None
    best = min(_OBX_STATUS_RANK.get(o.get(11).upper(), 2) for o, _m in live)
    top = [(o, m) for o, m in live if _OBX_STATUS_RANK.get(o.get(11).upper(), 2) == best]
    readable = [(o, m) for o, m in top if _obx_result(o)[0]]
    if not readable:
        o, m = top[-1]
        return o, m, False
    results = {_obx_result(o)[0] for o, _m in readable}
    o, m = readable[-1]
    return o, m, len(results) > 1


def _obx_result(obx: Segment) -> tuple[str | None, str]:
    status = obx.get(11).upper()
    if status == "I":
        return ids.RESULT_PENDING, "OBX-11"
    vt = obx.get(2).upper()
    candidates = []
    if vt in ("CWE", "CE", "CNE", "CF"):
        for rep in range(max(1, len(obx.reps(5)))):
            cs = obx.comps(5, rep) + ["", "", "", "", ""]
            candidates += [cs[0], cs[1], cs[3], cs[4]]
    else:
        candidates.append(obx.raw(5) if vt in ("ST", "TX", "FT", "") else obx.get(5))
    found = {r for r in (parse_result(c) for c in candidates if c.strip()) if r}
    if len(found) == 1:
        return found.pop(), "OBX-5"
    if len(found) > 1:
        return None, "OBX-5"
    flag = {r for r in (parse_interpretation(obx.get(8, 1, rep)) for rep in range(max(1, len(obx.reps(8))))) if r}
    if len(flag) == 1:
        return flag.pop(), "OBX-8"
    return None, "OBX-5"


def _make_test(d: _Doc, spm: Segment | None, obr: Segment | None, obx: Segment, method: str, codes: LocalCodes,
               f: Facts) -> Test | None:
    prov: dict[str, str] = {"method": d.prov("OBX-3")}
    specimen = None
    if spm is not None:
        specimen = _coded(spm, 4, codes.specimen_of)
        if specimen:
            prov["specimen"] = d.prov("SPM-4")
    if specimen is None and obr is not None and obr.get(15):
        specimen = _coded(obr, 15, codes.specimen_of)
        if specimen:
            prov["specimen"] = d.prov("OBR-15")
    if specimen is None:
        f.warn(f"{ids.TESTS}: 院内コード表にない検体コードのため検体を転記しませんでした")
    coll = None
    if spm is not None and (coll := _date_of(spm, 17)):
        prov["collection_date"] = d.prov("SPM-17")
    elif obr is not None and (coll := _date_of(obr, 7)):
        prov["collection_date"] = d.prov("OBR-7")
    result, where = _obx_result(obx)
    if result:
        prov["result"] = d.prov(where)
    else:
        f.warn(f"{ids.TESTS}: 検査結果「{nz.clean(obx.raw(5))[:20]}」を陽性・陰性に判定できないため結果を転記しませんでした")
    rdate = None
    if (rdate := _date_of(obx, 19)):
        prov["result_date"] = d.prov("OBX-19")
    elif obr is not None and (rdate := _date_of(obr, 22)):
        prov["result_date"] = d.prov("OBR-22")
    if result == ids.RESULT_PENDING:
        rdate = None
        prov.pop("result_date", None)
    return Test(method, specimen, coll, result, rdate, prov, stamp=d.stamp)


def extract_ssmix2_files(files: dict[str, bytes], local_codes: Any = None) -> dict[str, Any]:
    """Extract items from the files of ONE patient folder: {relative path: raw bytes}. Never raises."""
    try:
        return _extract(files, load_local_codes(local_codes))
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never crashes the caller
        return empty_result(f"SS-MIX2データを処理できませんでした（{type(exc).__name__}）")


def _extract(files: dict[str, bytes], codes: LocalCodes) -> dict[str, Any]:
    f = Facts()
    for e in codes.errors:
        f.warn(e)
    if not isinstance(files, dict) or not files:
        f.warn("SS-MIX2のファイルがありません")
        return finalize(f)
    metas = []
    deleted: list[FileMeta] = []
    for rel, data in files.items():
        if not isinstance(data, (bytes, bytearray)):
            continue
        if is_junk_name(str(rel)):
            continue   # .bak / .tmp / editor copies, README, Thumbs.db: not records of the storage
        meta = parse_name(str(rel))
        if meta.named and meta.flag == "0":
            deleted.append(meta)  # cancelled / deleted record
            continue
        metas.append((meta, bytes(data)))
    # a flag-0 file deletes the record it repeats (same date, data type, order number and department) as far as
    # it was stored before; a record stored again afterwards stands
    if deleted:
        def same_record(a: FileMeta, b: FileMeta) -> bool:
            return (a.patient_id, a.date, a.datatype, a.order, a.dept) == (b.patient_id, b.date, b.datatype, b.order,
                                                                            b.dept)
        before = len(metas)
        metas = [(m, data) for m, data in metas
                 if not (m.named and any(same_record(m, x) and m.timestamp <= x.timestamp for x in deleted))]
        if len(metas) < before:
            f.warn(f"取消（コンディションフラグ0）された記録が{before - len(metas)}件あり、除外しました")
    patient_ids = [m.patient_id for m, _ in metas if m.named]
    folder_id = max(set(patient_ids), key=patient_ids.count) if patient_ids else ""
    docs: list[_Doc] = []
    skipped_other = 0
    for meta, data in sorted(metas, key=lambda x: x[0].rel):
        if meta.named and folder_id and meta.patient_id != folder_id:
            skipped_other += 1
            continue
        msgs, warns = parse_bytes(data)
        for w in warns:
            f.warn(f"{meta.rel.split('/')[-1]}: {w}")
        for msg in msgs:
            pid = msg.first("PID")
            # PID-3 may repeat (insurance card, old chart number, ...): the message is this patient's when any
            # identifier is the folder's patient id
            pid_ids = [i for r in range(len(pid.reps(3))) if (i := pid.get(3, 1, r).strip())] if pid is not None else []
            if folder_id and pid_ids and not any(i == folder_id or i.lstrip("0") == folder_id.lstrip("0")
                                                 for i in pid_ids):
                skipped_other += 1
                continue
            docs.append(_Doc(meta, msg))
    if skipped_other:
        f.warn(f"別の患者IDのデータが{skipped_other}件含まれていたため除外しました")
    if not docs:
        f.warn("読み込めるHL7メッセージがありません")
        return finalize(f)
    _patient(f, docs)
    _pv1_events(f, docs)
    _problems(f, docs)
    _tests(f, docs, codes)
    return finalize(f)


def read_patient_dir(path: str | os.PathLike[str]) -> tuple[dict[str, bytes], str | None]:
    """Read a patient folder (or a single file) into {relative path: bytes}; (files, error message)."""
    p = Path(path)
    if not p.exists():
        return {}, f"パスが存在しません: {path}"
    if p.is_file():
        try:
            return {p.name: p.read_bytes()}, None
        except OSError as exc:
            return {}, f"ファイルを読めません: {path} ({exc.strerror})"
    files: dict[str, bytes] = {}
    total = 0
    for root, dirnames, names in os.walk(p):
        dirnames.sort()
        for name in sorted(names):
            if name.startswith("."):
                continue
            fp = Path(root) / name
            try:
                size = fp.stat().st_size
                if size > 5 * 1024 * 1024:
                    continue
                total += size
                if total > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
                    return files, None
                files[fp.relative_to(p).as_posix()] = fp.read_bytes()
            except OSError:
                continue
    if not files:
        return {}, f"SS-MIX2のファイルがありません: {path}"
    return files, None


def extract_ssmix2_dir(path: str | os.PathLike[str], local_codes: Any = None) -> dict[str, Any]:
    """Extract one SS-MIX2 patient folder. Never raises; a bad path gives a result with 'error'."""
    try:
        files, error = read_patient_dir(path)
    except Exception as exc:  # noqa: BLE001
        files, error = {}, f"読み込みに失敗しました: {path} ({type(exc).__name__})"
    if error:
        res = empty_result(error)
        res["error"] = error
        return res
    return extract_ssmix2_files(files, local_codes)
