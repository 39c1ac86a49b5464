"""`connector watch`: pull confirmed notifications and write them back into the chart, outbound only.

Each notification revision the data centre lists (the feed, from a saved cursor) goes into a local queue
(`state_dir/state.json`); each queued revision is fetched — the FHIR document and the PDF — and written

- into a per-patient folder: `out_dir/<patient>/<patient>_<notification>_r<revision>.json|.pdf`, and
- into SS-MIX2 extended storage (拡張ストレージ), the standard storage's patient/day tree with the content type
  `HERSYS`: `extended_root/<id[0:3]>/<id[3:6]>/<id>/<YYYYMMDD>/HERSYS/<id>_<YYYYMMDD>_HERSYS_<notification>_r<rev>`
  `.json|.pdf`, where the EMR's SS-MIX2 viewer shows them with the patient's other documents.

While the data centre cannot be reached the queue stays and is retried with backoff; the cursor moves only once
the rows are queued, and a revision leaves the queue only when both files are written (atomically). Names come
from the data centre's feed and are checked before they become paths.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .client import DataCentre, Refused, Unreachable
from .config import Config
from .extract import PATIENT_ID

CONTENT_TYPE = "HERSYS"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BACKOFF_BASE, BACKOFF_CAP = 30.0, 3600.0


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


JST = ZoneInfo("Asia/Tokyo")


def _day(row: dict[str, Any]) -> str:
    """The storage's day folder: the Japanese calendar day of the last change (SS-MIX2 dates are local dates,
    whatever the connector machine's time zone or the offset the feed's timestamp carries)."""
    try:
        when = datetime.fromisoformat(str(row.get("updated_at")))
        if when.tzinfo is None:
            when = when.replace(tzinfo=JST)
        return when.astimezone(JST).strftime("%Y%m%d")
    except ValueError:
        return datetime.now(JST).strftime("%Y%m%d")


def extended_storage_paths(root: Path, row: dict[str, Any]) -> tuple[Path, Path]:
    pid, day = row["patient_id"], _day(row)
    folder = root / pid[:3] / pid[3:6] / pid / day / CONTENT_TYPE
    stem = f"{pid}_{day}_{CONTENT_TYPE}_{row['id']}_r{int(row['revision']):02d}"
    return folder / f"{stem}.json", folder / f"{stem}.pdf"


def patient_folder_paths(root: Path, row: dict[str, Any]) -> tuple[Path, Path]:
    stem = f"{row['patient_id']}_{row['id']}_r{int(row['revision']):02d}"
    return root / row["patient_id"] / f"{stem}.json", root / row["patient_id"] / f"{stem}.pdf"


def _safe(row: dict[str, Any]) -> bool:
    return (isinstance(row.get("patient_id"), str) and bool(PATIENT_ID.match(row["patient_id"]))
            and isinstance(row.get("id"), str) and bool(_UUID.match(row["id"]))
            and isinstance(row.get("revision"), int) and 0 < row["revision"] < 1000)


class WriteBack:
    def __init__(self, config: Config, centre: DataCentre, log=print, now=time.time):
        self.config, self.centre, self.log, self.now = config, centre, log, now
        self.state_path = Path(config.state_dir) / "state.json"
        self.state = self._load()

    def _load(self) -> dict[str, Any]:
        if self.state_path.exists():
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        return {"since": None, "queue": []}

    def _save(self) -> None:
        _write(self.state_path, json.dumps(self.state, ensure_ascii=False, indent=1).encode("utf-8"))

    def poll(self) -> int:
        """Queue what the feed lists after the cursor; returns how many were queued (0 when unreachable)."""
        try:
            rows = self.centre.feed(self.state.get("since"))
        except Unreachable as exc:
            self.log(f"{exc} 届出の取得は後で再試行します（未取得 {len(self.state['queue'])} 件）。")
            return 0
        queued = {(q["id"], q["revision"]) for q in self.state["queue"]}
        added = 0
        for row in rows:
            if not _safe(row):
                self.log(f"不正な行を無視しました: {str(row)[:80]}")
                continue
            if (row["id"], row["revision"]) not in queued:
                self.state["queue"].append({"id": row["id"], "patient_id": row["patient_id"],
                                            "revision": row["revision"], "updated_at": row.get("updated_at"),
                                            "attempts": 0, "next_at": 0})
                queued.add((row["id"], row["revision"]))
                added += 1
            self.state["since"] = max(self.state.get("since") or "", str(row.get("updated_at") or ""))
        self._save()
        return added

    def drain(self) -> int:
        """Fetch and write every queued revision that is due; returns how many were written."""
        written = 0
        for entry in list(self.state["queue"]):
            if entry["next_at"] > self.now():
                continue
            try:
                document = json.dumps(self.centre.document(entry["id"]), ensure_ascii=False, indent=1).encode("utf-8")
                pdf = self.centre.pdf(entry["id"])
            except (Unreachable, Refused) as exc:
                entry["attempts"] += 1
                entry["next_at"] = self.now() + min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (entry["attempts"] - 1))
                self.log(f"{entry['patient_id']} の届出を取得できませんでした（{exc}）。後で再試行します。")
                if isinstance(exc, Unreachable):
                    break
                continue
            targets = []
            if self.config.out_dir is not None:
                targets.append(patient_folder_paths(Path(self.config.out_dir), entry))
            if self.config.extended_root is not None:
                targets.append(extended_storage_paths(Path(self.config.extended_root), entry))
            for json_path, pdf_path in targets:
                _write(json_path, document)
                _write(pdf_path, pdf)
            self.state["queue"].remove(entry)
            written += 1
            self.log(f"{entry['patient_id']}: 第{entry['revision']}版をカルテに保存しました。")
        self._save()
        return written

    def run_once(self) -> tuple[int, int]:
        return self.poll(), self.drain()
