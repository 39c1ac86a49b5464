"""Command line: ``python -m mapping extract|coverage`` (used by the hospital connector and acceptance checks)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import vocabulary
from vocabulary import ids

from . import formats
from .codes import LocalCodes, load_local_codes
from .csvdwh import load_profile

DEFAULT_CATALOG = vocabulary.catalog_path(vocabulary.latest(ids.FORM_COVID19))


def extract_path(fmt: str, path: str, codes: LocalCodes, profile: dict[str, Any] | None) -> dict[str, Any]:
    """One PATH → the CLI's JSON object. Never raises."""
    try:
        res = formats.extract(fmt, formats.read_path(fmt, path), codes, profile)
    except OSError as exc:
        msg = str(exc)
        res = {"items": {}, "provenance": {}, "warnings": [msg], "suggestions": {}, "error": msg}
    except Exception as exc:  # noqa: BLE001 - one bad PATH never stops the batch
        msg = f"処理に失敗しました: {path} ({type(exc).__name__})"
        res = {"items": {}, "provenance": {}, "warnings": [msg], "suggestions": {}, "error": msg}
    out: dict[str, Any] = {"source": path}
    if res.get("error"):
        out["error"] = res["error"]
        out.update({"items": {}, "provenance": {}, "warnings": res.get("warnings", []),
                    "suggestions": {}})
        return out
    out.update({k: res.get(k, {} if k != "warnings" else []) for k in ("items", "provenance", "warnings",
                                                                        "suggestions")})
    return out


def _group_of(item: dict[str, Any]) -> str | None:
    """The repeat group of a catalog item: ``group`` (enriched catalogs) or the id prefix of a ``repeat`` item."""
    if item.get("group"):
        return str(item["group"])
    return item["id"].split(".", 1)[0] if item.get("repeat") and "." in item["id"] else None


def _filled(item: dict[str, Any], items: dict[str, Any]) -> bool:
    group = _group_of(item)
    if group:
        key = ids.row_key(item["id"])
        rows = items.get(group)
        return any(isinstance(t, dict) and t.get(key) not in (None, "") for t in (rows if isinstance(rows, list) else []))
    return items.get(item["id"]) not in (None, "", [])


def coverage(results: list[dict[str, Any]], catalog: dict[str, Any]) -> dict[str, Any]:
    entries = {it["id"]: it for it in catalog.get("items", []) if isinstance(it, dict) and isinstance(it.get("id"), str)}
    item_ids = list(entries)
    ok = [r for r in results if not r.get("error")]
    per_item = {i: sum(_filled(entries[i], r.get("items", {})) for r in ok) for i in item_ids}
    per_extract = ([sum(_filled(entries[i], r.get("items", {})) for i in item_ids) / len(item_ids) for r in ok]
                   if item_ids else [])
    return {
        "catalog_version": catalog.get("version"),
        "catalog_items": len(item_ids),
        "extracts": len(ok),
        "errors": len(results) - len(ok),
        "per_item": per_item,
        "mean_filled_percent": round(100 * sum(per_extract) / len(per_extract), 1) if per_extract else 0.0,
        "min_filled_percent": round(100 * min(per_extract), 1) if per_extract else 0.0,
        "max_filled_percent": round(100 * max(per_extract), 1) if per_extract else 0.0,
        "items_ever_filled_percent": (round(100 * sum(1 for v in per_item.values() if v) / len(item_ids), 1)
                                      if item_ids else 0.0),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mapping", description="EMR extract → HER-SYS items")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("extract", "coverage"):
        p = sub.add_parser(name)
        p.add_argument("--format", required=True, choices=formats.FORMATS)
        p.add_argument("--local-codes", default=None, help="the hospital's local lab/specimen code table (JSON)")
        p.add_argument("--profile", default=None, help="the hospital's CSV column-mapping profile (JSON); required for --format csv")
        p.add_argument("paths", nargs="+", metavar="PATH")
        if name == "coverage":
            p.add_argument("--catalog", default=str(DEFAULT_CATALOG))
            p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)

    codes = load_local_codes(args.local_codes)
    for e in codes.errors:
        print(f"warning: {e}", file=sys.stderr)
    profile = None
    if args.format == formats.CSV:
        profile, err = load_profile(args.profile)
        if err:
            print(f"warning: {err}", file=sys.stderr)
    results = []
    for path in args.paths:
        if args.format == formats.CSV and profile is None:
            msg = "CSVマッピングプロファイルを読み込めません"
            res = {"source": path, "error": msg, "items": {}, "provenance": {}, "warnings": [msg], "suggestions": {}}
        else:
            res = extract_path(args.format, path, codes, profile)
        if args.cmd == "extract":
            sys.stdout.write(json.dumps(res, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        results.append(res)
    if args.cmd == "coverage":
        try:
            catalog = json.loads(Path(args.catalog).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: catalog {args.catalog}: {exc}", file=sys.stderr)
            return 2
        cov = coverage(results, catalog)
        if args.json:
            print(json.dumps(cov, ensure_ascii=False))
        else:
            labels = {it["id"]: it.get("label", "") for it in catalog.get("items", [])}
            n = cov["extracts"]
            print(f"catalog {cov['catalog_version']}: {cov['catalog_items']} items, {n} extracts"
                  f" ({cov['errors']} errors)")
            for item_id, count in cov["per_item"].items():
                print(f"{count:4d}/{n:<4d} {item_id:32s} {labels.get(item_id, '')}")
            print(f"filled per extract: mean {cov['mean_filled_percent']}% "
                  f"(min {cov['min_filled_percent']}%, max {cov['max_filled_percent']}%) of catalog items;"
                  f" items filled in at least one extract: {cov['items_ever_filled_percent']}%"
                  " — the 2021 study's automatic link filled 14–26 %")
    return 0
