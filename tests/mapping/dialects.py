"""Vendor dialects the first round of variants (variants.py) does not cover, generated from the public samples.

Each SS-MIX2 dialect is ``(files -> files, key -> key)``; each FHIR dialect ``(bundle -> bundle|bytes, key -> key)``.
The key function says what a careful human would fill from the rewritten extract: usually the same answer, and
EMPTY where the rewritten extract no longer supports a value (a wrong pre-fill is worse than an empty one).
They imitate what Japanese EMRs (and their SS-MIX2 / JP Core exporters) write in the field: character sets and
escape sequences, repetitions in another order, HL7 table codes instead of the expected ones, cancel messages,
corrected/cancelled results, standard codes instead of local ones, other Bundle shapes and reference styles.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import jaconv

from mapping.hl7v2 import decode_bytes

from .variants import Files, Key, _field, _set, rewrite, same, without

# --- helpers -----------------------------------------------------------------------------------------------------


def _decoded(files: Files) -> dict[str, str]:
    return {rel: decode_bytes(data)[0] for rel, data in files.items()}


def _segs(text: str) -> list[list[str]]:
    return [s.split("|") for s in re.split(r"\r\n|\r|\n", text) if s]


def _name_meta(rel: str) -> list[str]:
    return rel.rsplit("/", 1)[-1].split("_")


def _pid_line(files: Files) -> str:
    for rel, text in sorted(_decoded(files).items()):
        if "_ADT-00_" in rel:
            for s in _segs(text):
                if s[0] == "PID":
                    return "|".join(s)
    raise AssertionError("no ADT-00")


def _pid_fields(files: Files) -> list[str]:
    return _pid_line(files).split("|")


def _patient_id(files: Files) -> str:
    return _name_meta(next(iter(files)))[0]


def _store(files: Files, date: str, dtype: str, order: str, stamp: str, segments: list[str], flag: str = "1") -> Files:
    """Add one SS-MIX2 file (MSH built here) to a copy of files."""
    pid = _patient_id(files)
    code, trig = {"ADT-12": ("ADT", "A04"), "ADT-22": ("ADT", "A01"), "ADT-52": ("ADT", "A03"),
                  "ADT-21": ("ADT", "A14"), "ADT-51": ("ADT", "A16"), "PPR-01": ("PPR", "ZD1"),
                  "OML-11": ("OUL", "R22")}.get(dtype, ("ADT", "A08"))
    if segments and segments[0].startswith("!"):          # "!A11": override the trigger event
        trig, segments = segments[0][1:], segments[1:]
    msh = f"MSH|^~\\&|HIS|H0001|SS-MIX2|H0001|{stamp[:14]}||{code}^{trig}^{code}_{trig}|M{stamp}|P|2.5||||||~ISO IR87||ISO 2022-1994|||"
    text = "\r".join([msh, *segments]) + "\r"
    rel = f"{date}/{dtype}/{pid}_{date}_{dtype}_{order}_{stamp}_01_{flag}"
    out = dict(files)
    out[rel] = encode_iso2022_vendor(text)
    return out


def _files_of(files: Files, dtype: str) -> list[tuple[str, str]]:
    return [(rel, text) for rel, text in sorted(_decoded(files).items()) if f"_{dtype}_" in rel]


def _first_seg(text: str, name: str) -> list[str] | None:
    return next((s for s in _segs(text) if s[0] == name), None)


def _shift_day(yyyymmdd: str, days: int) -> str:
    from datetime import date, timedelta
    d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) + timedelta(days=days)
    return d.strftime("%Y%m%d")


# --- character sets ----------------------------------------------------------------------------------------------


def _msh18(value: str) -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        return _set(fields, 18, value) if name == "MSH" else fields
    return seg


def _sjis_to_jis(b: bytes) -> bytes:
    s1, s2 = b[0], b[1]
    j1 = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) * 2 - (1 if s2 < 0x9F else 0)
    j2 = s2 - (0x1F if s2 < 0x7F else 0x20 if s2 < 0x9F else 0x7E)
    return bytes((j1, j2))


def encode_iso2022_vendor(text: str) -> bytes:
    """ISO-2022-JP as cp50221 writes it: JIS X 0208 with the NEC/IBM vendor rows, half-width katakana after
    ESC ( I (JIS X 0201 katakana set), JIS X 0212 after ESC $ ( D."""
    out = bytearray()
    mode = "ascii"

    def switch(m: str, esc: bytes) -> None:
        nonlocal mode
        if mode != m:
            out.extend(esc)
            mode = m
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            switch("ascii", b"\x1b(B")
            out.append(o)
        elif 0xFF61 <= o <= 0xFF9F:
            switch("kana", b"\x1b(I")
            out.append(o - 0xFF61 + 0x21)
        else:
            try:
                jis = ch.encode("iso2022_jp")
                switch("jis", b"\x1b$B")
                out.extend(jis[3:5])
                continue
            except UnicodeEncodeError:
                pass
            try:
                sj = ch.encode("cp932")
                switch("jis", b"\x1b$B")
                out.extend(_sjis_to_jis(sj))
                continue
            except UnicodeEncodeError:
                pass
            e = ch.encode("iso2022_jp_1")  # JIS X 0212
            switch("jis0212", b"\x1b$(D")
            out.extend(e[4:6])
    switch("ascii", b"\x1b(B")
    return bytes(out)


def reencode(fn: Callable[[str], bytes], text_fn: Callable[[str], str] | None = None,
             seg_fn: Callable[[str, list[str]], list[str] | None] | None = None) -> Callable[[Files], Files]:
    def make(files: Files) -> Files:
        out = {}
        for rel, data in rewrite(files, seg_fn, encoding="utf-8", text_fn=text_fn).items():
            out[rel] = fn(data.decode("utf-8"))
        return out
    return make


def halfwidth_kana_rep(name: str, fields: list[str]) -> list[str]:
    if name == "PID":
        reps = []
        for rep in _field(fields, 5).split("~"):
            c = rep.split("^")
            if len(c) > 7 and c[7] == "P":
                c = [jaconv.z2h(c[0], kana=True), jaconv.z2h(c[1], kana=True), *c[2:]]
            reps.append("^".join(c))
        fields = _set(fields, 5, "~".join(reps))
    return fields


JIS0212_NAME = {"渡辺": "渡邊", "高橋": "髙橋", "中村": "中邨"}  # 邊: JIS X 0208; 髙: NEC-selected IBM; 邨: JIS X 0208


def rare_kanji_text(text: str) -> str:
    # 鷗 is in JIS X 0212 only (not JIS X 0208, not cp932): written after ESC $ ( D
    return text.replace("清水^太郎", "清水^鷗外").replace("髙", "髙")


def rare_kanji_key(key: Key) -> Key:
    key = dict(key)
    if key.get("patient.name") == "清水　太郎":
        key["patient.name"] = "清水　鷗外"
    return key


# --- patient identification --------------------------------------------------------------------------------------


def _map_reps(n: int, fn: Callable[[list[str]], list[list[str]]], seg_name: str = "PID") \
        -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        if name != seg_name or not _field(fields, n):
            return fields
        return _set(fields, n, "~".join("^".join(c) for c in fn([r.split("^") for r in fields[n].split("~")])))
    return seg


def kana_first(reps: list[list[str]]) -> list[list[str]]:
    return sorted(reps, key=lambda c: 0 if len(c) > 7 and c[7] == "P" else 1)


def no_repr_kana_first(reps: list[list[str]]) -> list[list[str]]:
    return [c[:2] for c in kana_first(reps)]


def alphabetic_first(reps: list[list[str]]) -> list[list[str]]:
    return [["YAMADA", "TARO", "", "", "", "", "L", "A"], *reps]


def romaji_unmarked_first(reps: list[list[str]]) -> list[list[str]]:
    return [["YAMADA", "TARO"], *[c[:2] for c in reps]]


def name_one_component_given_first(reps: list[list[str]]) -> list[list[str]]:
    """Family and given in component 1, separated by a full-width space (and kana too)."""
    return [[c[0] + "\u3000" + c[1], "", *c[2:]] if len(c) > 1 else c for c in reps]


def pid_field(n: int, fn: Callable[[str], str]) -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        return _set(fields, n, fn(_field(fields, n))) if name == "PID" and _field(fields, n) else fields
    return seg


def sex_japanese(v: str) -> str:
    return {"F": "女", "M": "男"}.get(v, v)


def split_address(reps: list[list[str]]) -> list[list[str]]:
    out = []
    for c in reps:
        c = c + [""] * (7 - len(c))
        m = re.match(r"^(.+?[都道府県])(.+?[市区町村郡])(.*)$", c[2])
        if m and not c[0]:
            c = [m[3], "", m[2], m[1], *c[4:]]
        out.append(c)
    return out


def work_address_first(reps: list[list[str]]) -> list[list[str]]:
    return [["", "", "大阪府大阪市北区梅田１−１−１", "", "5300001", "JPN", "B"], *reps]


def work_address_only(reps: list[list[str]]) -> list[list[str]]:
    return [[*c[:6], "B"] + c[7:] for c in reps]


def postal_fullwidth_hyphen(reps: list[list[str]]) -> list[list[str]]:
    out = []
    for c in reps:
        c = list(c)
        if len(c) > 4 and re.fullmatch(r"\d{7}", c[4]):
            c[4] = jaconv.h2z(c[4][:3] + "-" + c[4][3:], digit=True, ascii=True)
        out.append(c)
    return out


def postal_in_text(reps: list[list[str]]) -> list[list[str]]:
    out = []
    for c in reps:
        c = list(c)
        if len(c) > 4 and c[4]:
            c[2] = f"〒{c[4][:3]}-{c[4][3:]}　{c[2]}"
            c[4] = ""
        out.append(c)
    return out


def phone_email_work_first(reps: list[list[str]]) -> list[list[str]]:
    return [["", "NET", "Internet", "taro.yamada@example.jp"],
            ["", "WPN", "PH", "", "", "", "", "", "", "", "", "03-0000-0000"],
            ["", "ORN", "FX", "", "", "", "", "", "", "", "", "03-1111-1111"], *reps]


def phone_in_component1(reps: list[list[str]]) -> list[list[str]]:
    """The deprecated XTN-1 ("(090)4912-7617") instead of XTN-12."""
    out = []
    for c in reps:
        c = c + [""] * (12 - len(c))
        num = c[11]
        if num:
            parts = num.split("-")
            c = [f"({parts[0]}){'-'.join(parts[1:])}", *c[1:11], ""]
        out.append(c)
    return out


def death_flag_only(name: str, fields: list[str]) -> list[str]:
    if name == "PID" and _field(fields, 29):
        fields = _set(fields, 29, "")
    return fields


def death_date_only(name: str, fields: list[str]) -> list[str]:
    if name == "PID" and _field(fields, 30):
        fields = _set(fields, 30, "")
    return fields


def death_date_with_tz(name: str, fields: list[str]) -> list[str]:
    """PID-29 as UTC: 2021-03-02 04:12 JST is 2021-03-01 19:12 UTC; the JST date must be kept."""
    if name == "PID" and re.fullmatch(r"\d{12,14}", _field(fields, 29)):
        from datetime import datetime, timedelta
        v = fields[29]
        dt = datetime.strptime(v[:12], "%Y%m%d%H%M") - timedelta(hours=9)
        fields = _set(fields, 29, dt.strftime("%Y%m%d%H%M") + "+0000")
    return fields


def _drop_key_if(item: str, cond: Callable[[Key], bool]) -> Callable[[Key], Key]:
    return lambda key: {k: v for k, v in key.items() if not (k == item and cond(key))}


def birth_year_month(v: str) -> str:
    return v[:6]


def birth_with_time(v: str) -> str:
    return v + "1230+0900" if re.fullmatch(r"\d{8}", v) else v


# --- contacts (NK1) ----------------------------------------------------------------------------------------------


def nk1_more_contacts(files: Files) -> Files:
    """Every patient gets an emergency contact (EMC) and a spouse/child before any guardian; an adult's parent
    (MTH) is not a guardian for HER-SYS (保護者: minors only)."""
    def make(text: str) -> str:
        out = []
        for s in _segs(text):
            if s[0] == "NK1":
                continue
            out.append("|".join(s))
            if s[0] == "PID":
                out.append("NK1|1|山本^花子^^^^^L^I|EMC^緊急連絡先^HL70063|^^神奈川県横浜市西区１−１^^2200001^JPN^H")
                out.append("NK1|2|山本^一郎^^^^^L^I|SPO^配偶者^HL70063|^^神奈川県横浜市西区１−１^^2200001^JPN^H")
                for nk in [x for x in _segs(text) if x[0] == "NK1"]:
                    out.append("|".join(_set(nk, 1, "3")))
                if not any(x[0] == "NK1" for x in _segs(text)):
                    out.append("NK1|3|山本^和子^^^^^L^I|MTH^母^HL70063|^^神奈川県横浜市西区１−１^^2200001^JPN^H")
        return "\r".join(out) + "\r"
    out = {}
    for rel, data in files.items():
        if "_ADT-00_" in rel:
            out[rel] = encode_iso2022_vendor(make(decode_bytes(data)[0]))
        else:
            out[rel] = data
    return out


def nk1_jahis_text_only(name: str, fields: list[str]) -> list[str]:
    """Relationship as a local code with only the text saying 母/父 (no HL7 table 0063 code)."""
    if name == "NK1" and _field(fields, 3).startswith("GRD"):
        fields = _set(fields, 3, "03^母^99ZZZ")
    return fields


# --- visits, admissions, physicians ------------------------------------------------------------------------------


def pv1_doctor(fn: Callable[[list[str]], list[str]]) -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        if name == "PV1" and _field(fields, 7):
            reps = [r.split("^") for r in fields[7].split("~")]
            fields = _set(fields, 7, fn(reps[0]))
        return fields
    return seg


def doctor_kana_rep_first(c: list[str]) -> str:
    kana = [c[0], "カナ", "センセイ", *c[3:14], "P"]
    kanji = c + [""] * (15 - len(c))
    return "^".join(kana) + "~" + "^".join(kanji[:15])


def doctor_id_only(c: list[str]) -> str:
    return c[0]


def _adm_info(files: Files) -> tuple[str, str] | None:
    for _rel, text in _files_of(files, "ADT-22"):
        pv1 = _first_seg(text, "PV1")
        if pv1 and re.match(r"\d{8}", _field(pv1, 44)):
            return _field(pv1, 44)[:8], "|".join(pv1)
    return None


def planned_events(files: Files) -> Files:
    """ADT-21 (入院予定, A14) and ADT-51 (退院予定, A16) with other dates: plans are not events."""
    adm = _adm_info(files)
    pid = _pid_line(files)
    first = sorted(_files_of(files, "ADT-12"))
    if not first:
        return files
    day = _name_meta(first[0][0])[1]
    plan_in = _shift_day(day, -2)
    files = _store(files, plan_in, "ADT-21", "-", plan_in + "100000000",
                   [f"EVN||{plan_in}100000", pid, f"PV1|0001|I|W3^301^1|||||||||||||||||||||||||||||||||||||||||{_shift_day(day, 1)}100000"])
    if adm:
        files = _store(files, adm[0], "ADT-51", "-", adm[0] + "150000000",
                       [f"EVN||{adm[0]}150000", pid,
                        f"PV1|0001|I|W3^301^1|||||||||||||||||||||||||||||||||||||||||{adm[0]}140000|{_shift_day(adm[0], 3)}100000"])
    return files


def admission_cancel_and_readmit(files: Files) -> Files:
    """An admission entered two days before the real one and cancelled (A11, same admission date); the real
    admission stands."""
    adm = _adm_info(files)
    if not adm:
        return files
    pid = _pid_line(files)
    wrong = _shift_day(adm[0], -2)
    pv1 = f"PV1|0001|I|W3^301^1||||D0001^誤登録^医師^^^^^^^L^^^^^I|||||||||||||||||||||||||||||||||||||{wrong}140000"
    files = _store(files, wrong, "ADT-22", "-", wrong + "140000000", [f"EVN||{wrong}140000", pid, pv1])
    return _store(files, wrong, "ADT-22", "-", wrong + "180000000", ["!A11", f"EVN||{wrong}180000", pid, pv1])


def admission_cancelled_flag0_same_order(files: Files) -> Files:
    """A wrong admission stored, then the same record stored again with condition flag 0 (SS-MIX2: newest file of
    the record decides): it must be ignored."""
    adm = _adm_info(files)
    if not adm:
        return files
    pid = _pid_line(files)
    wrong = _shift_day(adm[0], -1)
    pv1 = f"PV1|0001|I|W3^301^1|||||||||||||||||||||||||||||||||||||||||{wrong}140000"
    files = _store(files, wrong, "ADT-22", "-", wrong + "140000000", [f"EVN||{wrong}140000", pid, pv1])
    return _store(files, wrong, "ADT-22", "-", wrong + "141500000", [f"EVN||{wrong}141500", pid, pv1], flag="0")


def discharge_cancelled(files: Files) -> Files:
    """The discharge is cancelled (A13) afterwards: there is no discharge date."""
    out = dict(files)
    for rel, text in _files_of(files, "ADT-52"):
        meta = _name_meta(rel)
        stamp = meta[4]
        segs = _segs(text)
        pv1 = next(s for s in segs if s[0] == "PV1")
        new_stamp = str(int(stamp) + 10000000)
        out = _store(out, meta[1], "ADT-52", "-", new_stamp,
                     ["!A13", f"EVN||{new_stamp[:14]}", _pid_line(files), "|".join(pv1)])
    return out


def visit_cancelled(files: Files) -> Files:
    """A visit (ADT-12) three days before the real first visit, cancelled by A11 in ADT-12."""
    first = sorted(_files_of(files, "ADT-12"))
    if not first:
        return files
    day = _name_meta(first[0][0])[1]
    wrong = _shift_day(day, -3)
    pid = _pid_line(files)
    pv1 = f"PV1|0001|O|01^^^^^^^^内科||||D0001^誤登録^医師^^^^^^^L^^^^^I|||||||||||||||||||||||||||||||||||||{wrong}091500"
    files = _store(files, wrong, "ADT-12", "-", wrong + "091500000", [f"EVN||{wrong}091500", pid, pv1])
    return _store(files, wrong, "ADT-12", "-", wrong + "120000000", ["!A11", f"EVN||{wrong}120000", pid, pv1])


def discharge_before_admission(files: Files) -> Files:
    """A stray discharge message dated before the admission (an earlier stay's): not this admission's discharge."""
    adm = _adm_info(files)
    if not adm:
        return files
    pid = _pid_line(files)
    old_in, old_out = _shift_day(adm[0], -40), _shift_day(adm[0], -30)
    return _store(files, old_out, "ADT-52", "-", old_out + "110000000",
                  [f"EVN||{old_out}110000", pid,
                   f"PV1|0001|I|W3^301^1|||||||||||||||||||||||||||||||||||||||||{old_in}140000|{old_out}110000"])


# --- problems (PRB) ----------------------------------------------------------------------------------------------


def prb_code(fn: Callable[[str], str]) -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        if name == "PRB" and _field(fields, 3).startswith("U071^"):
            fields = _set(fields, 3, fn(fields[3]))
        return fields
    return seg


def _prb_extra(files: Files, days: int, prb_tail: Callable[[str], str], order: str = "P0099",
               name: str = "COVID-19") -> Files:
    for _rel, text in _files_of(files, "PPR-01"):
        prb = _first_seg(text, "PRB")
        if prb and _field(prb, 3).startswith("U071^") and len(_field(prb, 4)) < 3:
            day = _shift_day(_field(prb, 7)[:8], days)
            return _store(files, day, "PPR-01", order, day + "120000000",
                          [_pid_line(files), f"PRB|AD|{day}120000|U071^{name}^I10|{order[-3:]}|||{day}|" + prb_tail(day)])
    return files


def suspected_and_ruled_out(files: Files) -> Files:
    """Other COVID-19 problems besides the confirmed one: suspected (PRB-13 疑い flag, or 「疑い」 in the name
    with the same ICD-10 code, as Japanese 標準病名 modifiers do), and ruled out (除外) after the diagnosis date.
    None of them is the diagnosis."""
    files = _prb_extra(files, -3, lambda d: "|||||P^疑い^99ZZZ||||", "P0097")
    files = _prb_extra(files, -2, lambda d: "||||||||", "P0098", name="COVID-19の疑い")
    files = _prb_extra(files, 4, lambda d: "|||||R^除外^99ZZZ||||", "P0099")
    return _prb_extra(files, 5, lambda d: "||||||除外^^99ZZZ||", "P0100")


def problem_deleted_later(files: Files) -> Files:
    """A COVID-19 problem entered with a later date, then deleted by a newer message (PRB-1 DE, same PRB-4)."""
    files = _prb_extra(files, 6, lambda d: "||||||||", "P0101")
    for _rel, text in _files_of(files, "PPR-01"):
        prb = _first_seg(text, "PRB")
        if prb and _field(prb, 4) == "101":
            day = _field(prb, 7)[:8]
            later = _shift_day(day, 2)
            return _store(files, later, "PPR-01", "P0101", later + "120000000",
                          [_pid_line(files), f"PRB|DE|{later}120000|U071^COVID-19^I10|101|||{day}"])
    return files


def problem_cancelled_flag0(files: Files) -> Files:
    """A COVID-19 problem with a later date whose record (same order number) is stored again with flag 0."""
    files = _prb_extra(files, 6, lambda d: "||||||||", "P0102")
    for rel, data in list(files.items()):
        if "_P0102_" in rel:
            meta = _name_meta(rel)
            meta[4] = str(int(meta[4]) + 10000000)
            meta[-1] = "0"
            files[rel.rsplit("/", 1)[0] + "/" + "_".join(meta)] = data
    return files


# --- lab results (SPM/OBR/OBX) -----------------------------------------------------------------------------------


def _lab_files(files: Files) -> list[tuple[str, list[list[str]]]]:
    return [(rel, _segs(text)) for rel, text in _files_of(files, "OML-11") if rel.endswith("_1")]


def _covid_obx(segs: list[list[str]]) -> list[str] | None:
    return next((s for s in segs if s[0] == "OBX" and re.match(r"L70\d\d\^", _field(s, 3))), None)


def jlac10_codes(name: str, fields: list[str]) -> list[str]:
    """The lab sends JLAC10 (17 digits) with the registered test name instead of the hospital's local code."""
    if name in ("OBX", "OBR"):
        n = 3 if name == "OBX" else 4
        c = _field(fields, n).split("^")
        if c[0] in ("L7001", "L7002", "L7003", "L7010"):
            jlac = {"L7001": "5F6251450019862", "L7002": "5F6251430019871", "L7003": "5F6251431019872",
                    "L7010": "5F6251450019862"}[c[0]]
            fields = _set(fields, n, f"{jlac}01^{c[1]}^JC10")
    return fields


def _flip(v: str) -> str:
    return v.replace("POS^陽性", "__T").replace("NEG^陰性", "POS^陽性").replace("__T", "NEG^陰性")


def corrected_results(files: Files) -> Files:
    """The original message reports the wrong value first (final) and then the corrected one (OBX-11 C) in the
    same message; in another file the lab sends a newer copy of the order with the corrected value."""
    out = dict(files)
    for rel, segs in _lab_files(files):
        new = []
        for s in segs:
            if s[0] == "OBX" and s is _covid_obx(segs):
                wrong = list(s)
                wrong[5] = _flip(s[5])
                new.append("|".join(wrong))
                new.append("|".join(_set(s, 11, "C")))
            else:
                new.append("|".join(s))
        out[rel] = encode_iso2022_vendor("\r".join(new) + "\r")
    return out


def newer_file_cancels_order(files: Files) -> Files:
    """An extra order with the opposite result, then a newer file of the same order with OBX-11 X (cancelled)
    and, for a second extra order, a newer file with condition flag 0."""
    out = dict(files)
    for rel, _ in _lab_files(files)[:1]:
        data = files[rel]
        for order, how in (("O09001", "X"), ("O09002", "flag0")):
            meta = _name_meta(rel)
            meta[3] = order
            rel1 = rel.rsplit("/", 1)[0] + "/" + "_".join(meta)
            text = decode_bytes(data)[0]
            text = text.replace(f"|{_name_meta(rel)[3]}|", f"|{order}|")
            out[rel1] = encode_iso2022_vendor(_flip(text))
            meta[4] = str(int(meta[4]) + 20000000)
            if how == "X":
                cancelled = "\r".join("|".join(_set(s, 11, "X") if s[0] == "OBX" else s) for s in _segs(_flip(text)))
                out[rel.rsplit("/", 1)[0] + "/" + "_".join(meta)] = encode_iso2022_vendor(cancelled + "\r")
            else:
                meta[-1] = "0"
                out[rel.rsplit("/", 1)[0] + "/" + "_".join(meta)] = encode_iso2022_vendor(_flip(text))
    return out


def preliminary_then_final(files: Files) -> Files:
    """An older copy of each order, preliminary (OBX-11 P) with the opposite value: the final one wins."""
    out = dict(files)
    for rel, segs in _lab_files(files):
        meta = _name_meta(rel)
        meta[4] = str(int(meta[4]) - 20000000)
        text = "\r".join("|".join(_set(s, 11, "P") if s[0] == "OBX" else s) for s in segs) + "\r"
        out[rel.rsplit("/", 1)[0] + "/" + "_".join(meta)] = encode_iso2022_vendor(_flip(text))
    return out


def ct_value_same_code(files: Files) -> Files:
    """A numeric Ct value under the same analyte code (NM, no flag) next to the qualitative result."""
    out = dict(files)
    for rel, segs in _lab_files(files):
        new = []
        for s in segs:
            new.append("|".join(s))
            if s is _covid_obx(segs):
                ct = _set(_set(_set(list(s), 2, "NM"), 5, "28.4"), 6, "Ct")
                ct = _set(ct, 8, "")
                new.append("|".join(ct))
        out[rel] = encode_iso2022_vendor("\r".join(new) + "\r")
    return out


def spm_missing_obr15(files: Files) -> Files:
    """No SPM segment: the specimen in OBR-15 (SPS, subcomponents) and the collection time in OBR-7."""
    out = dict(files)
    for rel, segs in _lab_files(files):
        spm = next((s for s in segs if s[0] == "SPM"), None)
        if spm is None:
            continue
        spec = _field(spm, 4).replace("^", "&")
        new = []
        for s in segs:
            if s[0] == "SPM":
                continue
            if s[0] == "OBR":
                s = _set(s, 15, spec)
            new.append("|".join(s))
        out[rel] = encode_iso2022_vendor("\r".join(new) + "\r")
    return out


def antigen_plus_pcr_same_order(files: Files) -> Files:
    """The order also carries an antigen screen that is 判定保留 (equivocal) and a re-test note: only readable
    results are reported, so nothing changes."""
    out = dict(files)
    for rel, segs in _lab_files(files):
        new = []
        for s in segs:
            new.append("|".join(s))
            if s is _covid_obx(segs):
                extra = _set(_set(_set(list(s), 3, "L7099^SARS-CoV-2 抗原（参考）^99L"), 2, "ST"), 5, "判定保留")
                new.append("|".join(extra))
                new.append("NTE|1||再検")
        out[rel] = encode_iso2022_vendor("\r".join(new) + "\r")
    return out


def equivocal_result(name: str, fields: list[str]) -> list[str]:
    if name == "OBX" and _field(fields, 5).startswith("NEG^"):
        fields = _set(_set(fields, 2, "ST"), 5, "判定保留")
    return fields


def equivocal_key(key: Key) -> Key:
    key = dict(key)
    key["tests"] = [({k: v for k, v in t.items() if k != "result"} if t.get("result") == "negative" else t)
                    for t in key.get("tests", [])]
    return key


def utc_timestamps(name: str, fields: list[str]) -> list[str]:
    """Every timestamp with a time written in UTC with seconds fraction (JST dates must come out the same)."""
    from datetime import datetime, timedelta

    def conv(v: str) -> str:
        m = re.fullmatch(r"(\d{14})", v)
        if not m:
            return v
        dt = datetime.strptime(v, "%Y%m%d%H%M%S") - timedelta(hours=9)
        return dt.strftime("%Y%m%d%H%M%S") + ".0000+0000"
    if name in ("SPM", "OBR", "OBX", "PV1", "PRB", "EVN"):
        fields = [fields[0], *[conv(f) for f in fields[1:]]]
    return fields


# --- registry ----------------------------------------------------------------------------------------------------

SSMIX2_DIALECTS: dict[str, tuple[Callable[[Files], Files], Callable[[Key], Key]]] = {
    # character sets: bytes decide, MSH-18 lies or is missing
    "euc-jp-bytes": (lambda f: rewrite(f, _msh18(""), encoding="euc_jp", text_fn=lambda t: t.replace("\uff0d", "\u2212")),
                     same),
    "cp932-msh18-says-utf8": (lambda f: rewrite(f, _msh18("UNICODE UTF-8"), encoding="cp932"), same),
    "utf8-msh18-absent": (lambda f: rewrite(f, _msh18(""), encoding="utf-8"), same),
    "iso2022-esc-I-halfwidth-kana": (reencode(encode_iso2022_vendor, seg_fn=halfwidth_kana_rep), same),
    "iso2022-jisx0212-kanji": (reencode(encode_iso2022_vendor, text_fn=rare_kanji_text), rare_kanji_key),
    "iso2022-cp50221-vendor-kanji": (
        reencode(encode_iso2022_vendor, text_fn=lambda t: t.replace("高", "髙").replace("崎", "﨑")),
        lambda k: {**k, **{x: k[x].replace("高", "髙").replace("崎", "﨑") for x in
                           ("patient.name", "patient.guardian_name", "report.physician_name") if k.get(x)}}),
    # PID-5
    "pid5-kana-repetition-first": (lambda f: rewrite(f, _map_reps(5, kana_first)), same),
    "pid5-no-representation-kana-first": (lambda f: rewrite(f, _map_reps(5, no_repr_kana_first)), same),
    "pid5-alphabetic-repetition-first": (lambda f: rewrite(f, _map_reps(5, alphabetic_first)), same),
    "pid5-unmarked-romaji-first": (lambda f: rewrite(f, _map_reps(5, romaji_unmarked_first)), same),
    "pid5-one-component": (lambda f: rewrite(f, _map_reps(5, name_one_component_given_first)), same),
    # PID-7 / PID-8
    "pid7-time-and-zone": (lambda f: rewrite(f, pid_field(7, birth_with_time)), same),
    "pid7-year-month-only": (lambda f: rewrite(f, pid_field(7, birth_year_month)), without("patient.birth_date")),
    "pid8-japanese": (lambda f: rewrite(f, pid_field(8, sex_japanese)), same),
    "pid8-other-unknown": (lambda f: rewrite(f, pid_field(8, lambda v: {"F": "O", "M": "U"}.get(v, v))),
                           without("patient.sex")),
    # PID-11 / PID-13
    "pid11-split-components": (lambda f: rewrite(f, _map_reps(11, split_address)), same),
    "pid11-work-address-first": (lambda f: rewrite(f, _map_reps(11, work_address_first)), same),
    "pid11-work-address-only": (lambda f: rewrite(f, _map_reps(11, work_address_only)),
                                without("patient.address", "patient.postal_code")),
    "pid11-postal-fullwidth-hyphen": (lambda f: rewrite(f, _map_reps(11, postal_fullwidth_hyphen), encoding="cp932"), same),
    "pid11-postal-in-address-text": (lambda f: rewrite(f, _map_reps(11, postal_in_text)), same),
    "pid13-email-work-fax-first": (lambda f: rewrite(f, _map_reps(13, phone_email_work_first)), same),
    "pid13-xtn1-parentheses": (lambda f: rewrite(f, _map_reps(13, phone_in_component1)), same),
    # PID-29/30
    "death-flag-without-date": (lambda f: rewrite(f, death_flag_only), without("clinical.death_date")),
    "death-date-without-flag": (lambda f: rewrite(f, death_date_only), same),
    "death-date-utc": (lambda f: rewrite(f, death_date_with_tz), same),
    # NK1
    "nk1-emergency-spouse-adult-parent": (nk1_more_contacts, same),
    "nk1-relationship-text-only": (lambda f: rewrite(f, nk1_jahis_text_only), same),
    # PV1 / ADT events
    "pv1-7-kana-repetition-first": (lambda f: rewrite(f, pv1_doctor(doctor_kana_rep_first)), same),
    "pv1-7-id-only": (lambda f: rewrite(f, pv1_doctor(doctor_id_only)), same),
    "adt-planned-admission-discharge": (planned_events, same),
    "adt-admission-cancel-a11-then-real": (admission_cancel_and_readmit, same),
    "adt-admission-flag0-same-record": (admission_cancelled_flag0_same_order, same),
    "adt-discharge-cancel-a13": (discharge_cancelled, without("care.discharge_date")),
    "adt-visit-cancel-a11": (visit_cancelled, same),
    "adt-discharge-before-admission": (discharge_before_admission, same),
    # PRB
    "prb-icd-dotted": (lambda f: rewrite(f, prb_code(lambda v: v.replace("U071", "U07.1"))), same),
    "prb-icd-2013-system": (lambda f: rewrite(f, prb_code(lambda v: "U07.1^COVID-19^I10-2013")), same),
    "prb-medis-code-icd-alternate": (
        lambda f: rewrite(f, prb_code(lambda v: "B6YD^COVID-19^MDCDX2^U07.1^COVID-19^I10")), same),
    "prb-suspected-and-ruled-out": (suspected_and_ruled_out, same),
    "prb-deleted-later": (problem_deleted_later, same),
    "prb-cancelled-flag0": (problem_cancelled_flag0, same),
    # lab
    "obx-jlac10-codes": (lambda f: rewrite(f, jlac10_codes), same),
    "obx-corrected-in-message": (corrected_results, same),
    "obx-newer-file-cancels-order": (newer_file_cancels_order, same),
    "obx-preliminary-then-final": (preliminary_then_final, same),
    "obx-ct-value-same-code": (ct_value_same_code, same),
    "obx-equivocal-extra-analyte": (antigen_plus_pcr_same_order, same),
    "obx-equivocal-result": (lambda f: rewrite(f, equivocal_result), equivocal_key),
    "spm-missing-specimen-in-obr15": (spm_missing_obr15, same),
    "timestamps-utc-fraction": (lambda f: rewrite(f, utc_timestamps), same),
}


# --- FHIR --------------------------------------------------------------------------------------------------------

def _res(b: dict[str, Any], rt: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in b.get("entry", []) if e.get("resource", {}).get("resourceType") == rt]


def _pid(b: dict[str, Any]) -> str:
    return _res(b, "Patient")[0]["id"]


def urn_uuid_refs(b: dict[str, Any]) -> dict[str, Any]:
    """Transaction bundle: fullUrl urn:uuid, every reference by urn:uuid, ids dropped, request entries."""
    b = copy.deepcopy(b)
    ids: dict[str, str] = {}
    for e in b["entry"]:
        r = e["resource"]
        ids[f"{r['resourceType']}/{r.get('id')}"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(r['id']))}"

    def fix(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (ids.get(v, v) if k == "reference" and isinstance(v, str) else fix(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x
    entries = []
    for e in b["entry"]:
        r = e["resource"]
        full = ids[f"{r['resourceType']}/{r.get('id')}"]
        r = fix(r)
        if r["resourceType"] != "Patient":
            r.pop("id", None)   # the Patient keeps its id: references by urn:uuid must still find it
        entries.append({"fullUrl": full, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
    b["type"] = "transaction"
    b["entry"] = entries
    return b


def absolute_refs_searchset(b: dict[str, Any]) -> dict[str, Any]:
    """Searchset: absolute fullUrls, absolute references, search.mode match/include."""
    b = copy.deepcopy(b)
    base = "https://emr.example.jp/fhir/"

    def fix(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (base + v if k == "reference" and isinstance(v, str) else fix(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x
    b["type"] = "searchset"
    b["entry"] = [{"fullUrl": f"{base}{e['resource']['resourceType']}/{e['resource']['id']}", "resource": fix(e["resource"]),
                   "search": {"mode": "match" if e["resource"]["resourceType"] == "Patient" else "include"}}
                  for e in b["entry"]]
    return b


def contained_specimens(b: dict[str, Any]) -> dict[str, Any]:
    """Each Observation carries its Specimen as a contained resource, all with the same local id '#sp'."""
    b = copy.deepcopy(b)
    specs = {f"Specimen/{s['id']}": s for s in _res(b, "Specimen")}
    for o in _res(b, "Observation"):
        ref = o.get("specimen", {}).get("reference")
        if ref in specs:
            s = copy.deepcopy(specs[ref])
            s["id"] = "sp"
            o["contained"] = [s]
            o["specimen"] = {"reference": "#sp"}
    b["entry"] = [e for e in b["entry"] if e["resource"].get("resourceType") != "Specimen"]
    return b


def extension_url_variants(b: dict[str, Any]) -> dict[str, Any]:
    """The representation extension with other casing / https and the kana name first."""
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        for n in p.get("name", []):
            for e in n.get("extension", []):
                e["url"] = "https://hl7.org/fhir/StructureDefinition/ISO21090-EN-Representation"
        p["name"] = list(reversed(p.get("name", [])))
    return b


def nickname_and_usual(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        for n in p.get("name", []):
            n["use"] = "usual"
        p["name"] = [{"use": "nickname", "text": "たろちゃん", "family": "あだ", "given": ["名"]},
                     {"use": "old", "family": "旧姓", "given": ["花子"]}, *p["name"]]
    return b


def romaji_names_first(b: dict[str, Any]) -> dict[str, Any]:
    """A romaji name (ABC) first, and one without the extension: neither is the kanji name."""
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        p["name"] = [{"use": "official", "family": "YAMADA", "given": ["TARO"], "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "ABC"}]},
            {"use": "usual", "text": "Ｙａｍａｄａ Ｔａｒｏ"}, *p["name"]]
    return b


def birth_partial(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        p["birthDate"] = p["birthDate"][:7]
    return b


def address_parts(b: dict[str, Any]) -> dict[str, Any]:
    """JP Core style: state/city/line and postal code with a hyphen; plus a work address first."""
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        new = [{"use": "work", "text": "大阪府大阪市北区梅田１−１−１", "postalCode": "530-0001"}]
        for a in p.get("address", []):
            m = re.match(r"^(.+?[都道府県])(.+?[市区町村郡])(.*)$", a.get("text", ""))
            a = dict(a)
            if m:
                a.pop("text")
                a.update({"state": m[1], "city": m[2], "line": [m[3]], "use": "home"})
            if a.get("postalCode"):
                a["postalCode"] = a["postalCode"][:3] + "-" + a["postalCode"][3:]
            new.append(a)
        p["address"] = new
    return b


def address_work_only(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        for a in p.get("address", []):
            a["use"] = "work"
    return b


def telecom_mixed(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        tel = p.get("telecom", [])
        for t in tel:
            t["rank"] = 1
        p["telecom"] = [{"system": "email", "value": "taro@example.jp", "rank": 1},
                        {"system": "fax", "value": "03-1111-1111", "use": "home"},
                        {"system": "phone", "value": "03-0000-0000", "use": "work", "rank": 2},
                        {"system": "phone", "value": "03-2222-2222", "use": "old"}, *tel]
    return b


def deceased_boolean(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        if "deceasedDateTime" in p:
            p.pop("deceasedDateTime")
            p["deceasedBoolean"] = True
    return b


def _covid_condition(b: dict[str, Any]) -> dict[str, Any] | None:
    for c in _res(b, "Condition"):
        if any(cd.get("code") in ("U07.1", "U071") for cd in c.get("code", {}).get("coding", [])):
            return c
    return None


def _shift_iso(d: str, days: int) -> str:
    from datetime import date, timedelta
    return (date.fromisoformat(d[:10]) + timedelta(days=days)).isoformat()


def condition_statuses(b: dict[str, Any]) -> dict[str, Any]:
    """Besides the confirmed COVID-19: refuted, entered-in-error and provisional ones with other dates, one that
    only says 疑い in its text, and the real one marked resolved (recovered: still the diagnosis)."""
    b = copy.deepcopy(b)
    c = _covid_condition(b)
    if c is None or "recordedDate" not in c:
        return b
    extra = []
    for i, (ver, days, text) in enumerate([("refuted", 3, "COVID-19"), ("entered-in-error", 4, "COVID-19"),
                                            ("provisional", 2, "COVID-19"), (None, 1, "COVID-19の疑い"),
                                            (None, 5, "COVID-19（除外）")]):
        x = copy.deepcopy(c)
        x["id"] = f"{c['id']}-x{i}"
        x["recordedDate"] = _shift_iso(c["recordedDate"], days)
        x["code"]["text"] = text
        for cd in x["code"]["coding"]:
            cd["display"] = text
        if ver:
            x["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                   "code": ver}]}
        extra.append(x)
    c["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "resolved"}]}
    c["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]}
    b["entry"] += [{"resource": x} for x in extra]
    return b


def condition_medis_first(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for c in _res(b, "Condition"):
        codings = c.get("code", {}).get("coding", [])
        c["code"]["coding"] = [{"system": "urn:oid:1.2.392.200119.4.101.6", "code": "B6YD",
                                "display": codings[0].get("display", "") if codings else ""}, *codings]
        for cd in codings:
            if "icd-10" in cd.get("system", ""):
                cd["system"] = "http://jpfhir.jp/fhir/core/CodeSystem/JP_ICD10"
    return b


def observation_statuses(b: dict[str, Any]) -> dict[str, Any]:
    """Preliminary copies with the opposite value (another id, older issued), entered-in-error copies, and the real
    ones 'amended'."""
    b = copy.deepcopy(b)
    extra = []
    for o in _res(b, "Observation"):
        txt = o.get("valueCodeableConcept", {}).get("text")
        if txt not in ("陽性", "陰性"):
            continue
        for st, suffix in (("preliminary", "p"), ("entered-in-error", "e")):
            x = copy.deepcopy(o)
            x["id"] = o["id"] + suffix
            x["status"] = st
            x["valueCodeableConcept"] = {"text": "陰性" if txt == "陽性" else "陽性"}
            x.pop("interpretation", None)
            if "issued" in x:
                x["issued"] = x["issued"][:10] + "T09:00:00+09:00"
            extra.append(x)
        o["status"] = "amended"
    b["entry"] += [{"resource": x} for x in extra]
    return b


def interpretation_only_period(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for o in _res(b, "Observation"):
        if o.get("interpretation"):
            o.pop("valueCodeableConcept", None)
        if "effectiveDateTime" in o:
            o["effectivePeriod"] = {"start": o.pop("effectiveDateTime") + "T10:00:00+09:00"}
    return b


def observation_jlac10_first(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for o in _res(b, "Observation"):
        codings = o.get("code", {}).get("coding", [])
        o["code"]["coding"] = [{"system": "urn:oid:1.2.392.200119.4.504", "code": "5F625145001986201",
                                "display": "SARS-CoV-2 RNA"}, *codings]
    return b


def encounter_noise(b: dict[str, Any]) -> dict[str, Any]:
    """A cancelled admission and an entered-in-error visit before the real ones; a planned admission."""
    b = copy.deepcopy(b)
    pid = _pid(b)
    encs = _res(b, "Encounter")
    first = min((e["period"]["start"] for e in encs if e.get("period", {}).get("start")), default=None)
    if first is None:
        return b
    extra = [
        {"resourceType": "Encounter", "id": "x-imp", "status": "cancelled", "class": {"code": "IMP"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": _shift_iso(first, 1)}},
        {"resourceType": "Encounter", "id": "x-amb", "status": "entered-in-error", "class": {"code": "AMB"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": _shift_iso(first, -2)}},
        {"resourceType": "Encounter", "id": "x-plan", "status": "planned", "class": {"code": "IMP"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": _shift_iso(first, 2)}},
    ]
    b["entry"] += [{"resource": x} for x in extra]
    return b


def practitioner_display_only(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    prs = {f"Practitioner/{p['id']}": p for p in _res(b, "Practitioner")}

    def fix(x: Any) -> Any:
        if isinstance(x, dict):
            if x.get("reference") in prs:
                n = prs[x["reference"]]["name"][0]
                return {"display": n.get("text") or n["family"] + " " + "".join(n.get("given", []))}
            return {k: fix(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x
    b["entry"] = [{"resource": fix(e["resource"])} for e in b["entry"]
                  if e["resource"].get("resourceType") != "Practitioner"]
    return b


def adult_with_parent_contact(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        if not p.get("contact"):
            p["contact"] = [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                                           "code": "MTH"}]}],
                             "name": {"text": "山本　和子"}, "address": {"text": "神奈川県横浜市西区１−１"}}]
        else:
            p["contact"] = [{"relationship": [{"coding": [{"code": "C", "display": "Emergency Contact"}]}],
                             "name": {"text": "山本　花子"}}, *p["contact"]]
    return b


FHIR_DIALECTS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Key], Key]]] = {
    "transaction-urn-uuid-references": (urn_uuid_refs, same),
    "searchset-absolute-references": (absolute_refs_searchset, same),
    "contained-specimens-same-local-id": (contained_specimens, same),
    "representation-url-casing-kana-first": (extension_url_variants, same),
    "names-usual-nickname-old": (nickname_and_usual, same),
    "names-romaji-first": (romaji_names_first, same),
    "birthdate-year-month": (birth_partial, without("patient.birth_date")),
    "address-parts-and-work-first": (address_parts, same),
    "address-work-only": (address_work_only, without("patient.address", "patient.postal_code")),
    "telecom-email-fax-work-old-rank": (telecom_mixed, same),
    "deceased-boolean-without-date": (deceased_boolean, without("clinical.death_date")),
    "condition-statuses": (condition_statuses, same),
    "condition-medis-coding-first-jp-icd10": (condition_medis_first, same),
    "observation-statuses": (observation_statuses, same),
    "observation-interpretation-only-period": (interpretation_only_period, same),
    "observation-jlac10-coding-first": (observation_jlac10_first, same),
    "encounter-cancelled-error-planned": (encounter_noise, same),
    "practitioner-display-only": (practitioner_display_only, same),
    "contacts-adult-parent-and-emergency": (adult_with_parent_contact, same),
    "everything-at-once": (lambda b: urn_uuid_refs(contained_specimens(observation_statuses(condition_statuses(
        telecom_mixed(address_parts(extension_url_variants(encounter_noise(b))))))).copy()), same),
}
