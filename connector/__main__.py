"""The hospital connector's command line (`hersys-connector`, or `python -m connector`).

    hersys-connector --config connector.toml launch --patient ID   # the EMR button: extract, push, open the form
    hersys-connector --config connector.toml watch [--once]        # write confirmed notifications into the chart
    hersys-connector --config connector.toml print --patient ID    # the paper form from the local extract (fax)
    hersys-connector --config connector.toml push --format F PATH  # push one extract, print the launch URL
    hersys-connector --config connector.toml pull --out DIR        # fetch confirmed documents once into DIR

`--url` and `--api-key` override the file (the older command line without a file keeps working). Exit codes:
0 done, 1 refused by the data centre or bad input, 2 the data centre cannot be reached.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import webbrowser
from pathlib import Path

from mapping import formats

from . import config as config_mod
from .client import DataCentre, Refused, Unreachable, mapping_tables
from .extract import ExtractError, items_body, patient_extract, raw_body, read_source, run_mapping

UNREACHABLE_HINT = ("急ぐ場合は `print --patient 患者ID` で紙の様式（別記様式）を印刷し、保健所へFAXしてください。")


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _push(args, cfg, centre, patient_id, fmt, data, result) -> dict:
    body = raw_body(patient_id, fmt, data) if (cfg.raw or getattr(args, "raw", False)) else \
        items_body(patient_id, fmt, data, result)
    return centre.push(body)


def cmd_launch(args, cfg) -> int:
    """What the EMR button runs: extract inside the hospital, push the items, open the one-time launch URL."""
    with DataCentre(cfg) as centre:
        tables = mapping_tables(cfg, centre)
        fmt, data, result = patient_extract(cfg, args.patient, tables)
        answer = _push(args, cfg, centre, args.patient, fmt, data, result)
    url = answer["launch_url"]
    for warning in answer.get("warnings", []):
        _err(f"注意: {warning}")
    if args.no_browser or not webbrowser.open(url):
        print(url)
    return 0


def cmd_push(args, cfg) -> int:
    """Push one extract given by path (the older command line)."""
    path = Path(args.path)
    fmt = args.format
    patient_id = args.patient_id or (path.name if formats.get(fmt).reads_folder else path.stem)
    with DataCentre(cfg) as centre:
        tables = mapping_tables(cfg, centre)
        data = read_source(fmt, path)
        result = run_mapping(fmt, data, patient_id, tables.get("local_codes") or {}, tables.get("csv_profile"))
        answer = _push(args, cfg, centre, patient_id, fmt, data, result)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    else:
        print(answer["launch_url"])
        for warning in answer.get("warnings", []):
            _err(f"注意: {warning}")
    return 0


def cmd_watch(args, cfg) -> int:
    from .writeback import WriteBack

    if cfg.out_dir is None and cfg.extended_root is None:
        _err("書き戻し先（out_dir または extended_root）を設定してください。")
        return 1
    with DataCentre(cfg) as centre:
        writer = WriteBack(cfg, centre)
        while True:
            writer.run_once()
            if args.once:
                return 0 if not writer.state["queue"] else 2
            time.sleep(args.interval)


def cmd_pull(args, cfg) -> int:
    """Fetch once, flat into one folder (the older command line); `watch` is the installed way."""
    from .writeback import _safe, _write

    out = Path(args.out)
    with DataCentre(cfg) as centre:
        for row in centre.feed(args.since):
            if not _safe(row):
                continue
            stem = f"{row['patient_id']}_{row['id']}_r{row['revision']}"
            _write(out / f"{stem}.json", json.dumps(centre.document(row["id"]), ensure_ascii=False, indent=1).encode())
            _write(out / f"{stem}.pdf", centre.pdf(row["id"]))
            delivery = row.get("delivery") or {}
            print(f"{stem}: {row['status']} {delivery.get('label', '')} {delivery.get('receipt_id') or ''}")
    return 0


def cmd_print(args, cfg) -> int:
    """The paper form from the local extract: works without the data centre (cached mapping tables)."""
    from .paper import paper_pdf

    tables = mapping_tables(cfg, None)  # never waits for the data centre
    _fmt, _data, result = patient_extract(cfg, args.patient, tables)
    out = Path(args.out or f"{args.patient}-hassei-todoke.pdf")
    out.write_bytes(paper_pdf(result, patient_id=args.patient, facility=cfg.facility, version=cfg.form_version))
    print(out)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hersys-connector", description="HER-SYS登録補助 病院コネクタ（院内DMZ、外向き通信のみ）")
    p.add_argument("--config", default=None, help="設定ファイル（TOML）。既定は $HERSYS_CONNECTOR_CONFIG か ./connector.toml")
    p.add_argument("--url", default=None, help="データセンターのURL（設定ファイルより優先）")
    p.add_argument("--api-key", default=None, help="連携用APIキー（設定ファイルの key_file より優先）")
    p.add_argument("--ca", default=None, help="サーバー証明書を検証するCAファイル")
    p.add_argument("--timeout", type=float, default=None)
    sub = p.add_subparsers(dest="cmd", required=True)
    launch = sub.add_parser("launch", help="電子カルテのボタン：抽出→送信→届出画面を開く")
    launch.add_argument("--patient", required=True)
    launch.add_argument("--no-browser", action="store_true", help="ブラウザを開かず起動URLを表示")
    launch.add_argument("--raw", action="store_true", help="抽出データそのものを送る（医療機関が許可した場合のみ）")
    watch = sub.add_parser("watch", help="確定した届出をカルテ（患者フォルダ・SS-MIX2拡張ストレージ）に書き戻す")
    watch.add_argument("--once", action="store_true", help="1回だけ実行して終了")
    watch.add_argument("--interval", type=float, default=60.0, help="取得の間隔（秒）")
    pr = sub.add_parser("print", help="院内の抽出データから紙の様式（別記様式）PDFを作る（データセンター不要）")
    pr.add_argument("--patient", required=True)
    pr.add_argument("--out", default=None)
    push = sub.add_parser("push", help="抽出データのパスを指定して送信し、起動URLを表示")
    push.add_argument("--format", choices=formats.FORMATS, required=True)
    push.add_argument("--patient-id", default=None)
    push.add_argument("--json", action="store_true")
    push.add_argument("--raw", action="store_true", help="抽出データそのものを送る（医療機関が許可した場合のみ）")
    push.add_argument("path")
    pull = sub.add_parser("pull", help="確定した届出（FHIR文書とPDF）を一度だけ取得")
    pull.add_argument("--out", required=True)
    pull.add_argument("--since", default=None)
    return p


COMMANDS = {"launch": cmd_launch, "watch": cmd_watch, "print": cmd_print, "push": cmd_push, "pull": cmd_pull}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = config_mod.load(args.config, url=args.url, api_key=args.api_key, remote=args.cmd != "print")
    except config_mod.ConfigError as exc:
        _err(str(exc))
        return 1
    if args.ca:
        cfg.ca = args.ca
    if args.timeout:
        cfg.timeout = args.timeout
    try:
        return COMMANDS[args.cmd](args, cfg)
    except Unreachable as exc:
        _err(f"{exc} しばらくしてからもう一度お試しください。{UNREACHABLE_HINT if args.cmd == 'launch' else ''}")
        return 2
    except Refused as exc:
        _err(f"送信できませんでした（HTTP {exc.status}）: {exc}")
        return 1
    except ExtractError as exc:
        _err(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
