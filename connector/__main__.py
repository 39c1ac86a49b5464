from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import httpx

from mapping import formats


def _client(args) -> httpx.Client:
    return httpx.Client(base_url=args.url.rstrip("/"), timeout=args.timeout,
                        headers={"Authorization": f"Api-Key {args.api_key}", "User-Agent": "hersys-connector/1"},
                        verify=args.ca or True)


def push_body(fmt: str, path: Path, patient_id: str | None) -> dict:
    """The push of one patient's extract; what each format reads is decided in `mapping.formats`."""
    try:
        data = formats.read_path(fmt, path)
    except OSError as exc:
        raise SystemExit(str(exc))
    if formats.get(fmt).reads_folder:
        files = [{"path": name, "data_base64": base64.b64encode(raw).decode()} for name, raw in data.items()]
        return {"patient_id": patient_id or path.name, "format": fmt, "files": files}
    if fmt == formats.FHIR:
        return {"patient_id": patient_id or path.stem, "format": fmt,
                "bundle": json.loads(data.decode("utf-8-sig"))}
    return {"patient_id": patient_id or path.stem, "format": fmt, "csv_base64": base64.b64encode(data).decode()}


def cmd_push(args) -> int:
    body = push_body(args.format, Path(args.path), args.patient_id)
    with _client(args) as client:
        response = client.post("/api/v1/extracts", json=body)
    if response.status_code != 201:
        print(f"送信できませんでした（HTTP {response.status_code}）: {response.text[:500]}", file=sys.stderr)
        return 1
    data = response.json()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(data["launch_url"])
        for warning in data.get("warnings", []):
            print(f"注意: {warning}", file=sys.stderr)
    return 0


def cmd_pull(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with _client(args) as client:
        feed = client.get("/api/v1/notifications", params={"since": args.since} if args.since else None)
        feed.raise_for_status()
        for row in feed.json()["results"]:
            stem = f"{row['patient_id']}_{row['id']}_r{row['revision']}"
            doc = client.get(f"/api/v1/notifications/{row['id']}/document")
            pdf = client.get(f"/api/v1/notifications/{row['id']}/document.pdf")
            if doc.status_code == 200:
                (out / f"{stem}.json").write_text(json.dumps(doc.json(), ensure_ascii=False, indent=1), encoding="utf-8")
            if pdf.status_code == 200:
                (out / f"{stem}.pdf").write_bytes(pdf.content)
            print(f"{stem}: {row['status']} {row['delivery'].get('label', '')} {row['delivery'].get('receipt_id') or ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m connector", description="HER-SYS登録補助 病院コネクタ")
    p.add_argument("--url", required=True, help="データセンターのURL")
    p.add_argument("--api-key", required=True, help="医療機関の連携用APIキー")
    p.add_argument("--ca", default=None, help="サーバー証明書を検証するCAファイル")
    p.add_argument("--timeout", type=float, default=30.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    push = sub.add_parser("push", help="患者の抽出データを送り、起動URLを表示")
    push.add_argument("--format", choices=formats.FORMATS, required=True)
    push.add_argument("--patient-id", default=None)
    push.add_argument("--json", action="store_true")
    push.add_argument("path")
    pull = sub.add_parser("pull", help="確定した届出（FHIR文書とPDF）を取得")
    pull.add_argument("--out", required=True)
    pull.add_argument("--since", default=None)
    args = p.parse_args(argv)
    return cmd_push(args) if args.cmd == "push" else cmd_pull(args)


if __name__ == "__main__":
    sys.exit(main())
