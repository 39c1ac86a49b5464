"""Second adversarial round: extract shapes neither variants.py nor dialects.py produce, and quirks applied to
EVERY relevant segment/resource at once. Same contract as dialects.py: ``(extract -> extract, key -> key)``; the
key function says what a careful human would fill (EMPTY where the rewritten extract no longer supports a value).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import jaconv

from mapping.hl7v2 import decode_bytes

from .dialects import _res, encode_iso2022_vendor
from .variants import Files, Key, _field, _set, cancelled_orders, chain, rewrite, same, without

# --- SS-MIX2: delimiters, escapes, identifiers ------------------------------------------------------------------


def other_delimiters(text: str) -> str:
    """MSH-2 `$*\\%` instead of `^~\\&` (the standard allows any; some gateways re-encode)."""
    return text.translate(str.maketrans({"^": "$", "~": "*", "&": "%"}))


def pid3_other_ids_first(name: str, fields: list[str]) -> list[str]:
    """PID-3 with the insurance card number and an old chart number before the SS-MIX2 patient id."""
    if name == "PID" and _field(fields, 3):
        fields = _set(fields, 3, "06139999^^^^HC~0000012345^^^H0001^PT~" + fields[3])
    return fields


def escapes_in_values(name: str, fields: list[str]) -> list[str]:
    """Highlighting escapes around the family name, \\.br\\ and an escaped '&' (\\T\\) in the address, escaped
    field separators (\\F\\) inside a Z note."""
    if name == "PID":
        reps = _field(fields, 5).split("~")
        c = reps[0].split("^")
        c[0] = "\\H\\" + c[0] + "\\N\\"
        reps[0] = "^".join(c)
        fields = _set(fields, 5, "~".join(reps))
        addr = _field(fields, 11).split("~")
        a = addr[0].split("^")
        if len(a) > 2 and a[2]:
            a[2] = a[2] + "\\.br\\AB\\T\\C101"
        addr[0] = "^".join(a)
        fields = _set(fields, 11, "~".join(addr))
    return fields


def escapes_key(key: Key) -> Key:
    key = dict(key)
    if key.get("patient.address"):
        key["patient.address"] += "　ＡＢ＆Ｃ１０１"
    return key


def hex_escape_in_name(name: str, fields: list[str]) -> list[str]:
    """A kanji written as \\Xhhhh\\ (its Shift_JIS bytes): we cannot know the charset, so the name stays EMPTY."""
    if name == "PID":
        reps = _field(fields, 5).split("~")
        c = reps[0].split("^")
        if c and c[0]:
            c[0] = c[0][:-1] + "\\X" + c[0][-1].encode("cp932").hex().upper() + "\\"
        reps[0] = "^".join(c)
        fields = _set(fields, 5, "~".join(reps))
    return fields


def xtn_country_code(name: str, fields: list[str]) -> list[str]:
    """PID-13 as XTN components: country 81, area code without the trunk 0, local number (and XTN-12 +81)."""
    if name == "PID" and _field(fields, 13):
        reps = []
        for rep in fields[13].split("~"):
            c = rep.split("^") + [""] * 12
            num = c[11]
            m = re.fullmatch(r"0(\d+)-(\d+-\d+)", num)
            if m:
                c = [*c[:4], "81", m[1], m[2].replace("-", ""), *c[7:11], "+81-" + m[1] + "-" + m[2]]
            reps.append("^".join(c[:12]))
        fields = _set(fields, 13, "~".join(reps))
    return fields


def results_text(pos: str, neg: str) -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        if name == "OBX" and _field(fields, 5).startswith(("POS^", "NEG^")):
            fields = _set(_set(fields, 2, "ST"), 5, pos if fields[5].startswith("POS") else neg)
        return fields
    return seg


def timestamps_everywhere(name: str, fields: list[str]) -> list[str]:
    """Every date/time field with seconds, fraction and +0900 (dates where only a date belongs, too)."""
    spots = {"PID": (7, 29), "PV1": (44, 45), "PRB": (2, 7), "SPM": (17,), "OBR": (6, 7, 22), "OBX": (14, 19),
             "EVN": (2,)}
    for n in spots.get(name, ()):
        v = _field(fields, n)
        if re.fullmatch(r"\d{8}", v):
            fields = _set(fields, n, v + "000000.0000+0900")
        elif re.fullmatch(r"\d{14}", v):
            fields = _set(fields, n, v + ".1234+0900")
    return fields


def repeated_segments(text: str) -> str:
    """Exporters that write a segment twice (PID, PV1, PRB, OBX duplicated verbatim)."""
    out = []
    for s in re.split(r"\r\n|\r|\n", text):
        if not s:
            continue
        out.append(s)
        if s[:3] in ("PID", "PV1", "PRB", "OBX", "SPM"):
            out.append(s)
    return "\r".join(out) + "\r"


def prb_text_only(name: str, fields: list[str]) -> list[str]:
    """PRB-3 with the disease name only (no code) for COVID-19; decided: the 標準病名 「COVID-19」 is U07.1."""
    if name == "PRB" and _field(fields, 3).startswith("U071^"):
        fields = _set(fields, 3, "^COVID-19^")
    return fields


def crlf_in_address(name: str, fields: list[str]) -> list[str]:
    if name == "PID" and _field(fields, 11):
        a = fields[11].split("^")
        if len(a) > 2 and len(a[2]) > 5:
            a[2] = a[2][:5] + "\r\n" + a[2][5:]
        fields = _set(fields, 11, "^".join(a))
    return fields


# --- SS-MIX2: bytes and folder shapes ---------------------------------------------------------------------------


def bytes_noise(files: Files) -> Files:
    """UTF-8 BOM, trailing blanks on every line, MLLP framing, NUL padding at the end."""
    out = {}
    for rel, data in files.items():
        text = decode_bytes(data)[0]
        lines = [s + "  \t" for s in re.split(r"\r\n|\r|\n", text) if s]
        out[rel] = b"\xef\xbb\xbf\x0b" + "\r\n".join(lines).encode("utf-8") + b"\x1c\r" + b"\x00" * 16
    return out


def utf16(files: Files) -> Files:
    """Saved as 'Unicode' (UTF-16LE with BOM) by a Windows tool."""
    return {rel: decode_bytes(data)[0].encode("utf-16") for rel, data in files.items()}


def folder_shapes(files: Files) -> Files:
    """Lower-case type folders, files directly under the date folder, an extra nesting level, '.hl7' suffixes,
    and junk next to them: README, zero-byte file, Thumbs.db, editor/backup copies with the OPPOSITE result."""
    files = cancelled_orders(files)      # flag-0 copies with the opposite result (they also get the suffix)
    out: Files = {}
    for i, (rel, data) in enumerate(sorted(files.items())):
        parts = rel.split("/")
        base = parts[-1]
        if i % 3 == 0:
            new = f"{parts[0]}/{parts[1].lower()}/{base}.hl7"
        elif i % 3 == 1:
            new = f"{parts[0]}/{base}.hl7"
        else:
            new = f"export/{parts[0]}/{parts[1]}/{base}.HL7"
        out[new] = data
        if "_OML-11_" in base and base.endswith("_1"):
            text = decode_bytes(data)[0].replace("POS^陽性", "__T").replace("NEG^陰性", "POS^陽性").replace(
                "__T", "NEG^陰性")
            out[f"{parts[0]}/{parts[1]}/{base}.bak"] = encode_iso2022_vendor(text)
            out[f"{parts[0]}/{parts[1]}/{base}~"] = encode_iso2022_vendor(text)
            out[f"{parts[0]}/{parts[1]}/{base}.tmp"] = b""
    out["README.txt"] = "SS-MIX2 標準化ストレージ 出力 2021/03/01\r\n".encode("cp932")
    out["Thumbs.db"] = bytes(range(256))
    out["empty"] = b""
    return out


# --- SS-MIX2 registry -------------------------------------------------------------------------------------------

SSMIX2_DIALECTS2: dict[str, tuple[Callable[[Files], Files], Callable[[Key], Key]]] = {
    "msh2-other-delimiters": (lambda f: rewrite(f, text_fn=other_delimiters), same),
    "pid3-other-identifiers-first": (lambda f: rewrite(f, pid3_other_ids_first), same),
    "escapes-highlight-br-T": (lambda f: rewrite(f, escapes_in_values), escapes_key),
    "escape-hex-in-name": (lambda f: rewrite(f, hex_escape_in_name, encoding="cp932"), without("patient.name")),
    "xtn-country-code-81": (lambda f: rewrite(f, xtn_country_code), same),
    "results-english-caps": (lambda f: rewrite(f, results_text("Positive", "NEGATIVE")), same),
    "results-detected": (lambda f: rewrite(f, results_text("detected", "not detected")), same),
    "results-検出": (lambda f: rewrite(f, results_text("検出", "検出せず")), same),
    "results-陽性（+）": (lambda f: rewrite(f, results_text("陽性（+）", "陰性（−）")), same),
    "timestamps-fraction-tz-everywhere": (lambda f: rewrite(f, timestamps_everywhere), same),
    "repeated-segments": (lambda f: rewrite(f, text_fn=repeated_segments), same),
    "prb-disease-name-only": (lambda f: rewrite(f, prb_text_only), same),
    "crlf-inside-address": (lambda f: rewrite(f, crlf_in_address), same),
    "bom-mllp-trailing-blanks-nul": (bytes_noise, same),
    "utf16-bom": (utf16, same),
    "folder-shapes-and-junk-files": (folder_shapes, same),
    "everything-at-once-2": (
        lambda f: folder_shapes(bytes_noise(rewrite(
            f, chain(pid3_other_ids_first, xtn_country_code, results_text("陽性（+）", "NEGATIVE"),
                     timestamps_everywhere),
            text_fn=lambda t: other_delimiters(repeated_segments(t))))),
        same),
}


# --- FHIR -------------------------------------------------------------------------------------------------------

JP_CORE = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_"


def meta_profiles(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    b["meta"] = {"lastUpdated": "2021-03-01T09:00:00+09:00"}
    for e in b["entry"]:
        r = e["resource"]
        r["meta"] = {"profile": [JP_CORE + r["resourceType"]], "versionId": "3"}
        r["text"] = {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">…</div>"}
    return b


def names_text_messy(b: dict[str, Any]) -> dict[str, Any]:
    """Names as text only, no representation extension, extra/full-width blanks, hiragana furigana."""
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        new = []
        for n in p.get("name", []):
            syl = any(e.get("valueCode") == "SYL" for e in n.get("extension", []))
            fam, giv = n.get("family", ""), "".join(n.get("given", []))
            if syl:
                fam, giv = jaconv.kata2hira(fam), jaconv.kata2hira(giv)
            new.append({"use": "official", "text": f" {fam}\u3000\u3000{giv}\u3000"})
        p["name"] = new
    for p in _res(b, "Practitioner"):
        for n in p.get("name", []):
            n["text"] = "  " + n.get("family", "") + "\u3000" + "".join(n.get("given", [])) + " "
            n.pop("family", None)
            n.pop("given", None)
    return b


def telecom_plus81(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        for i, t in enumerate(p.get("telecom", [])):
            v = t.get("value", "")
            digits = v.replace("-", "")
            if digits.startswith("0"):
                t["value"] = ("+81-" + v[1:]) if i % 2 == 0 else ("tel:+81" + digits[1:])
    return b


def address_postal_mark(b: dict[str, Any]) -> dict[str, Any]:
    """JP Core: structured parts AND a text that repeats them with 〒 and the postal code; postalCode with 〒."""
    b = copy.deepcopy(b)
    for p in _res(b, "Patient"):
        for a in p.get("address", []):
            text = a.get("text", "")
            m = re.match(r"^(.+?[都道府県])(.+?[市区町村郡])(.*)$", text)
            pc = a.get("postalCode", "")
            if m:
                a.update({"state": m[1], "city": m[2], "line": [m[3]], "use": "home", "type": "physical"})
            if pc:
                a["postalCode"] = f"〒{pc[:3]}-{pc[3:]}"
                a["text"] = f"〒{pc[:3]}-{pc[3:]}　{text}"
    return b


def value_string(pos: str, neg: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def fn(b: dict[str, Any]) -> dict[str, Any]:
        b = copy.deepcopy(b)
        for o in _res(b, "Observation"):
            txt = o.get("valueCodeableConcept", {}).get("text")
            if txt in ("陽性", "陰性"):
                o.pop("valueCodeableConcept")
                o["valueString"] = pos if txt == "陽性" else neg
        return b
    return fn


def utc_across_midnight(b: dict[str, Any]) -> dict[str, Any]:
    """Collection at 00:05-08:59 JST written in UTC (the previous UTC day); issued in UTC too."""
    b = copy.deepcopy(b)
    from datetime import date, timedelta

    def prev(d: str) -> str:
        return (date.fromisoformat(d[:10]) - timedelta(days=1)).isoformat()
    for o in _res(b, "Observation"):
        e = o.get("effectiveDateTime", "")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", e):
            o["effectiveDateTime"] = prev(e) + "T15:05:00Z"
        m = re.match(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})\+09:00$", o.get("issued", ""))
        if m and int(m[2]) < 9:
            o["issued"] = prev(m[1]) + f"T{int(m[2]) + 15:02d}:{m[3]}:{m[4]}.000Z"
    for s in _res(b, "Specimen"):
        col = s.get("collection", {})
        c = col.get("collectedDateTime", "")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", c):
            col["collectedDateTime"] = prev(c) + "T23:30:00-00:00"
    for c in _res(b, "Condition"):
        r = c.get("recordedDate", "")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", r):
            c["recordedDate"] = prev(r) + "T16:00:00Z"
    return b


def specimen_display_only(b: dict[str, Any]) -> dict[str, Any]:
    """No Specimen resources: Observation.specimen has only a display (the hospital's specimen name)."""
    b = copy.deepcopy(b)
    specs = {f"Specimen/{s['id']}": s for s in _res(b, "Specimen")}
    for o in _res(b, "Observation"):
        s = specs.get(o.get("specimen", {}).get("reference", ""))
        if s:
            disp = next((cd.get("display") for cd in s.get("type", {}).get("coding", [])), None)
            o["specimen"] = {"display": disp}
            col = s.get("collection", {}).get("collectedDateTime")
            if col:
                o["effectiveDateTime"] = col
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "Specimen"]
    return b


def condition_text_only(b: dict[str, Any]) -> dict[str, Any]:
    """The COVID-19 Condition with only code.text 「COVID-19」 (no coding). Decided: the 標準病名 「COVID-19」 is the
    U07.1 name (MEDIS), so the diagnosis date is filled (with a warning to check it)."""
    b = copy.deepcopy(b)
    for c in _res(b, "Condition"):
        if any(cd.get("code") in ("U07.1", "U071") for cd in c.get("code", {}).get("coding", [])):
            c["code"] = {"text": "COVID-19"}
    return b


def condition_text_only_suspected(b: dict[str, Any]) -> dict[str, Any]:
    """Text-only 「COVID-19疑い」 / provisional: never a diagnosis date."""
    b = condition_text_only(b)
    for c in _res(b, "Condition"):
        if c.get("code") == {"text": "COVID-19"}:
            c["code"] = {"text": "COVID-19疑い"}
    return b


FHIR_DIALECTS2: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Key], Key]]] = {
    "meta-profile-jp-core": (meta_profiles, same),
    "names-text-only-messy-blanks-hiragana": (names_text_messy, same),
    "telecom-plus81-tel-uri": (telecom_plus81, same),
    "address-parts-and-text-with-postal-mark": (address_postal_mark, same),
    "valueString-陽性（+）": (value_string("陽性（+）", "陰性（−）"), same),
    "valueString-english-caps": (value_string("Positive", "NEGATIVE"), same),
    "valueString-detected": (value_string("detected", "not detected"), same),
    "valueString-検出": (value_string("検出", "検出せず"), same),
    "utc-across-midnight": (utc_across_midnight, same),
    "specimen-display-only": (specimen_display_only, same),
    "condition-text-only": (condition_text_only, same),
    "condition-text-only-suspected": (condition_text_only_suspected, without("clinical.diagnosis_date")),
    "everything-at-once-2": (
        lambda b: meta_profiles(names_text_messy(telecom_plus81(address_postal_mark(value_string(
            "陽性（+）", "not detected")(utc_across_midnight(specimen_display_only(b))))))),
        same),
}
