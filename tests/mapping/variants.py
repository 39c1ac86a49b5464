"""Generators of real-world variation, applied to the public samples: each variant rewrites the extract the way
EMRs in the field do, and says how the answer key changes (usually not at all)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import jaconv

from mapping.hl7v2 import decode_bytes

Files = dict[str, bytes]
Key = dict[str, Any]

# --- SS-MIX2 -----------------------------------------------------------------------------------------------------


def _segments(text: str) -> list[str]:
    return [s for s in re.split(r"\r\n|\r|\n", text) if s]


def rewrite(files: Files, seg_fn: Callable[[str, list[str]], list[str] | None] | None = None, *,
            encoding: str | None = None, sep: str = "\r",
            text_fn: Callable[[str], str] | None = None) -> Files:
    """Decode every file, rewrite segments (seg_fn gets (segment id, fields) and returns fields or None to drop),
    re-encode with `encoding` (default: the file's own) and join segments with `sep`."""
    out: Files = {}
    for rel, data in files.items():
        text, enc, _w = decode_bytes(data)
        segs = []
        for s in _segments(text):
            fields = s.split("|")
            if seg_fn is not None:
                new = seg_fn(fields[0], fields)
                if new is None:
                    continue
                fields = new
            segs.append("|".join(fields))
        text = sep.join(segs) + sep
        if text_fn:
            text = text_fn(text)
        own = "cp932" if enc.startswith("cp932") else "iso2022_jp" if enc.startswith(("iso", "ascii")) else enc
        out[rel] = text.encode(encoding or own)
    return out


def _field(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def _set(fields: list[str], n: int, value: str) -> list[str]:
    fields = list(fields)
    while len(fields) <= n:
        fields.append("")
    fields[n] = value
    return fields


def _map_pid5(fn: Callable[[list[str]], list[str] | None]) -> Callable[[str, list[str]], list[str] | None]:
    def seg(name: str, fields: list[str]) -> list[str] | None:
        if name != "PID":
            return fields
        reps = []
        for rep in _field(fields, 5).split("~"):
            comps = rep.split("^")
            new = fn(comps)
            if new is not None:
                reps.append("^".join(new))
        return _set(fields, 5, "~".join(reps))
    return seg


def _kana_rep(conv: Callable[[str], str]) -> Callable[[str, list[str]], list[str] | None]:
    def fn(comps: list[str]) -> list[str]:
        if len(comps) > 7 and comps[7] == "P":
            comps = [conv(comps[0]), conv(comps[1]), *comps[2:]]
        return comps
    return _map_pid5(fn)


def drop_kana(name: str, fields: list[str]) -> list[str] | None:
    return _map_pid5(lambda c: None if len(c) > 7 and c[7] == "P" else c)(name, fields)


def space_names(space: str) -> Callable[[str, list[str]], list[str] | None]:
    def fn(comps: list[str]) -> list[str]:
        if len(comps) > 1 and comps[1]:
            comps = [comps[0] + space + comps[1], "", *comps[2:]]
        return comps

    inner = _map_pid5(fn)

    def seg(name: str, fields: list[str]) -> list[str] | None:
        fields = inner(name, fields) or fields
        if name == "PV1" and len(fields) > 7 and fields[7]:
            c = fields[7].split("^")
            if len(c) > 2:
                c = [c[0], c[1] + space + c[2], "", *c[3:]]
                fields = _set(fields, 7, "^".join(c))
        return fields
    return seg


def halfwidth_address(name: str, fields: list[str]) -> list[str]:
    if name in ("PID", "NK1"):
        n = 11 if name == "PID" else 4
        fields = _set(fields, n, jaconv.z2h(_field(fields, n), kana=False, ascii=True, digit=True).replace("−", "-"))
    return fields


def phone_no_hyphen(name: str, fields: list[str]) -> list[str]:
    if name == "PID":
        fields = _set(fields, 13, _field(fields, 13).replace("-", ""))
    return fields


def text_results(pos: str, neg: str, vt: str = "ST") -> Callable[[str, list[str]], list[str]]:
    def seg(name: str, fields: list[str]) -> list[str]:
        if name == "OBX" and _field(fields, 5).startswith(("POS^", "NEG^")):
            value = pos if fields[5].startswith("POS") else neg
            fields = _set(_set(fields, 2, vt), 5, value)
        return fields
    return seg


def timestamps(name: str, fields: list[str]) -> list[str]:
    if name == "PID" and re.fullmatch(r"\d{8}", _field(fields, 7)):
        fields = _set(fields, 7, fields[7] + "0000")
    if name == "PRB" and re.fullmatch(r"\d{8}", _field(fields, 7)):
        fields = _set(fields, 7, fields[7] + "093000")
    return fields


def extra_segments(name: str, fields: list[str]) -> list[str]:
    return fields


def add_z_segments(text: str) -> str:
    sep = "\r"
    text = re.sub(r"(PID\|[^\r]*\r)", lambda m: m.group(1) + "ZPI|1|独自拡張^ZZ|\\F\\escaped" + sep, text, count=1)
    text = re.sub(r"(OBX\|[^\r]*\r)", lambda m: m.group(1) + "NTE|1||検査コメント：再検予定なし" + sep, text)
    return text + "ZZZ|1|unknown trailing segment|" + sep


def drop_optional(name: str, fields: list[str]) -> list[str] | None:
    if name == "EVN":
        return None
    if name == "OBX":
        fields = _set(fields, 14, "")
    while len(fields) > 1 and fields[-1] == "":
        fields = fields[:-1]
    return fields


def drop_event_dates(name: str, fields: list[str]) -> list[str]:
    """No PV1-44/45 and no PRB-7: the storage folder's date (SS-MIX2 semantics) still dates the event."""
    if name == "PV1":
        fields = _set(_set(fields, 44, ""), 45, "")
    if name == "PRB":
        fields = _set(fields, 7, "")
    return fields


def alternate_codes(name: str, fields: list[str]) -> list[str]:
    """Local codes moved to the CWE alternate identifier, a (fictitious) standard code first."""
    for seg, n in (("OBX", 3), ("SPM", 4), ("OBR", 4)):
        if name == seg and _field(fields, n):
            c = fields[n].split("^")
            fields = _set(fields, n, "^".join(["99999", "標準コード例", "JC10", c[0], c[1] if len(c) > 1 else "", "99L"]))
    return fields


def superseded_adt00(files: Files) -> Files:
    """Add an older patient-information message (2015) with another address, phone and kana."""
    out = dict(files)
    for rel, data in files.items():
        if "_ADT-00_" not in rel:
            continue
        base = rel.rsplit("/", 1)[-1].split("_")
        base[4] = "20150101090000000"
        new_rel = rel.rsplit("/", 1)[0] + "/" + "_".join(base)

        def seg(name: str, fields: list[str]) -> list[str]:
            if name == "PID":
                fields = _set(fields, 11, "^^北海道札幌市中央区北１条西２−１^^0600001^JPN^H")
                fields = _set(fields, 13, "^PRN^PH^^^^^^^^^011-111-1111")
                fields = _set(fields, 5, _field(fields, 5).split("~")[0] + "~キュウセイ^ナマエ^^^^^L^P")
            if name == "MSH":
                fields = _set(fields, 6, "20150101090000")
            return fields
        out.update({new_rel: rewrite({rel: data}, seg)[rel]})
        break
    return out


def cancelled_orders(files: Files) -> Files:
    """Add, for each lab result file, a cancelled (flag 0) copy with a different order number and the opposite
    result: it must be ignored."""
    out = dict(files)
    for rel, data in files.items():
        if "_OML-11_" not in rel or not rel.endswith("_1"):
            continue
        parts = rel.rsplit("/", 1)
        base = parts[-1].split("_")
        base[3] = "X" + base[3]
        base[-1] = "0"
        new_rel = parts[0] + "/" + "_".join(base)

        def flip(text: str) -> str:
            return text.replace("POS^陽性", "__T").replace("NEG^陰性", "POS^陽性").replace("__T", "NEG^陰性")
        out[new_rel] = rewrite({rel: data}, text_fn=flip)[rel]
    return out


def vendor_kanji(text: str) -> str:
    return text.replace("高", "髙").replace("崎", "﨑")


def vendor_key(key: Key) -> Key:
    key = dict(key)
    for k in ("patient.name", "patient.guardian_name", "report.physician_name"):
        if isinstance(key.get(k), str):
            key[k] = vendor_kanji(key[k])
    return key


def without(*items: str) -> Callable[[Key], Key]:
    return lambda key: {k: v for k, v in key.items() if k not in items}


def same(key: Key) -> Key:
    return key


def chain(*fns: Callable[[str, list[str]], list[str] | None]) -> Callable[[str, list[str]], list[str] | None]:
    def seg(name: str, fields: list[str]) -> list[str] | None:
        for fn in fns:
            out = fn(name, fields)
            if out is None:
                return None
            fields = out
        return fields
    return seg


SSMIX2_VARIANTS: dict[str, tuple[Callable[[Files], Files], Callable[[Key], Key]]] = {
    "cp932": (lambda f: rewrite(f, encoding="cp932"), same),
    "cp932-vendor-kanji": (lambda f: rewrite(f, encoding="cp932", text_fn=vendor_kanji), vendor_key),
    "utf-8": (lambda f: rewrite(f, encoding="utf-8"), same),
    "crlf": (lambda f: rewrite(f, sep="\r\n"), same),
    "lf": (lambda f: rewrite(f, sep="\n"), same),
    "hiragana-furigana": (lambda f: rewrite(f, _kana_rep(jaconv.kata2hira)), same),
    "halfwidth-kana": (lambda f: rewrite(f, _kana_rep(lambda s: jaconv.z2h(s, kana=True)), encoding="cp932"), same),
    "halfwidth-digits": (lambda f: rewrite(f, halfwidth_address), same),
    "kana-missing": (lambda f: rewrite(f, drop_kana), without("patient.name_kana")),
    "name-fullwidth-space": (lambda f: rewrite(f, space_names("\u3000")), same),
    "name-ascii-space": (lambda f: rewrite(f, space_names(" ")), same),
    "phone-no-hyphen": (lambda f: rewrite(f, phone_no_hyphen), same),
    "results-（＋）": (lambda f: rewrite(f, text_results("（＋）", "（−）")), same),
    "results-(+)": (lambda f: rewrite(f, text_results("(+)", "(-)")), same),
    "results-kanji-text": (lambda f: rewrite(f, text_results("陽性", "陰性", "TX")), same),
    "results-pos-neg": (lambda f: rewrite(f, text_results("POS", "NEG")), same),
    "timestamps-for-dates": (lambda f: rewrite(f, timestamps), same),
    "superseded-patient-info": (superseded_adt00, same),
    "cancelled-orders": (cancelled_orders, same),
    "z-and-unknown-segments": (lambda f: rewrite(f, text_fn=add_z_segments), same),
    "missing-optional-fields": (lambda f: rewrite(f, drop_optional), same),
    "missing-event-dates": (lambda f: rewrite(f, drop_event_dates), same),
    "local-code-as-alternate": (lambda f: rewrite(f, alternate_codes), same),
    "everything-at-once": (
        lambda f: rewrite(cancelled_orders(superseded_adt00(f)),
                          chain(_kana_rep(jaconv.kata2hira), space_names("\u3000"), phone_no_hyphen,
                                text_results("（＋）", "(-)"), timestamps, halfwidth_address, drop_optional),
                          encoding="cp932", sep="\r\n", text_fn=add_z_segments),
        same),
}


# --- FHIR --------------------------------------------------------------------------------------------------------

def _resources(bundle: dict[str, Any], rt: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == rt]


def strip_extensions(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _resources(b, "Patient"):
        for n in p.get("name", []):
            n.pop("extension", None)
    return b


def reverse_names(b: dict[str, Any]) -> dict[str, Any]:
    b = strip_extensions(b)
    for p in _resources(b, "Patient"):
        p["name"] = list(reversed(p.get("name", [])))
    return b


def kana_form(conv: Callable[[str], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def fn(b: dict[str, Any]) -> dict[str, Any]:
        b = copy.deepcopy(b)
        for p in _resources(b, "Patient"):
            for n in p.get("name", []):
                if any(e.get("valueCode") == "SYL" for e in n.get("extension", [])):
                    n["family"] = conv(n["family"])
                    n["given"] = [conv(g) for g in n.get("given", [])]
                    n["text"] = conv(n.get("text", ""))
        return b
    return fn


def text_only_names(b: dict[str, Any]) -> dict[str, Any]:
    b = strip_extensions(b)
    for p in _resources(b, "Patient") + _resources(b, "Practitioner"):
        for n in p.get("name", []):
            n.pop("family", None)
            n.pop("given", None)
    return b


def fhir_phone_no_hyphen(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for p in _resources(b, "Patient"):
        for t in p.get("telecom", []):
            t["value"] = t["value"].replace("-", "")
    return b


def fhir_text_results(pos: str, neg: str, as_string: bool = False) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def fn(b: dict[str, Any]) -> dict[str, Any]:
        b = copy.deepcopy(b)
        for o in _resources(b, "Observation"):
            txt = o.get("valueCodeableConcept", {}).get("text")
            if txt in ("陽性", "陰性"):
                value = pos if txt == "陽性" else neg
                o.pop("interpretation", None)
                if as_string:
                    o.pop("valueCodeableConcept")
                    o["valueString"] = value
                else:
                    o["valueCodeableConcept"] = {"text": value}
        return b
    return fn


def fhir_timestamps(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    for c in _resources(b, "Condition"):
        if "recordedDate" in c:
            c["recordedDate"] += "T10:00:00+09:00"
    for s in _resources(b, "Specimen"):
        col = s.get("collection", {})
        if "collectedDateTime" in col and "T" not in col["collectedDateTime"]:
            col["collectedDateTime"] += "T10:05:00+09:00"
    for o in _resources(b, "Observation"):
        # 16:00 JST written in UTC: still the same Japanese date
        m = re.match(r"(\d{4}-\d{2}-\d{2})T16:00:00\+09:00", o.get("issued", ""))
        if m:
            o["issued"] = m.group(1) + "T07:00:00Z"
    for e in _resources(b, "Encounter"):
        per = e.get("period", {})
        for k in ("start", "end"):
            if k in per and "T" not in per[k]:
                per[k] += "T09:15:00+09:00"
    return b


def fhir_noise(b: dict[str, Any]) -> dict[str, Any]:
    """Unknown resources, an unrelated lab result, and a cancelled SARS-CoV-2 result with the opposite value."""
    b = copy.deepcopy(b)
    pid = _resources(b, "Patient")[0]["id"]
    extra: list[dict[str, Any]] = [
        {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": f"Patient/{pid}"}},
        {"resourceType": "Basic", "id": "z1", "extension": [{"url": "urn:vendor:x", "valueString": "独自"}]},
        {"resourceType": "Observation", "id": "spo2", "status": "final", "subject": {"reference": f"Patient/{pid}"},
         "code": {"coding": [{"system": "urn:local:lab", "code": "L1050", "display": "SpO2"}]},
         "valueQuantity": {"value": 95, "unit": "%"}},
    ]
    for o in _resources(b, "Observation"):
        if o.get("valueCodeableConcept", {}).get("text") in ("陽性", "陰性"):
            c = copy.deepcopy(o)
            c["id"] = o["id"] + "-cancelled"
            c["status"] = "cancelled"
            c["valueCodeableConcept"] = {"text": "陰性" if o["valueCodeableConcept"]["text"] == "陽性" else "陽性"}
            c.pop("interpretation", None)
            extra.append(c)
            break
    b["entry"] += [{"resource": r} for r in extra]
    return b


def as_bytes_with_bom(b: dict[str, Any]) -> bytes:
    return b"\xef\xbb\xbf" + json.dumps(b, ensure_ascii=False).encode("utf-8")


FHIR_VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Key], Key]]] = {
    "no-representation-extension": (strip_extensions, same),
    "no-extension-kana-first": (reverse_names, same),
    "hiragana-furigana": (kana_form(jaconv.kata2hira), same),
    "halfwidth-kana": (kana_form(lambda s: jaconv.z2h(s, kana=True)), same),
    "names-as-text-only": (text_only_names, same),
    "phone-no-hyphen": (fhir_phone_no_hyphen, same),
    "results-（＋）": (fhir_text_results("（＋）", "（－）"), same),
    "results-valueString": (fhir_text_results("(+)", "(-)", as_string=True), same),
    "timestamps-for-dates": (fhir_timestamps, same),
    "noise-and-cancelled": (fhir_noise, same),
    "bytes-with-bom": (as_bytes_with_bom, same),
    "everything-at-once": (
        lambda b: as_bytes_with_bom(fhir_noise(fhir_timestamps(fhir_text_results("（＋）", "(-)")(
            fhir_phone_no_hyphen(reverse_names(kana_form(jaconv.kata2hira)(b))))))),
        same),
}
