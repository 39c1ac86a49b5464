"""Inside the hospital: find one patient's EMR extract, run `mapping` over it, and build what is pushed.

The default push carries only the notification items (別紙1 ②: only notification items leave the hospital):
`items`, `provenance`, `suggestions`, `warnings` as `mapping` yielded them, the extract's format and the SHA-256 of
what was read. Nothing else of the chart is in it. A raw push (the extract itself) is built only when asked for
(`raw = true`), and the data centre accepts it only from a hospital whose administrator switched it on.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import mapping
from mapping import formats

from .config import Config

PATIENT_ID = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
#: Exactly the fields of an items-only push (tests check that nothing else is sent).
ITEMS_FIELDS = ("patient_id", "format", "source_format", "items", "provenance", "suggestions", "warnings",
                "source_sha256", "mapping_version")
MAPPING_VERSION = "mapping/1"


class ExtractError(Exception):
    """The patient's extract cannot be found or read; the message is for people (Japanese)."""


def check_patient_id(patient_id: str) -> str:
    if not isinstance(patient_id, str) or not PATIENT_ID.match(patient_id):
        raise ExtractError("患者IDは英数字・ハイフン・下線のみ、64文字以内です。")
    return patient_id


def patient_path(config: Config, patient_id: str) -> Path:
    """Where the EMR keeps this patient's extract: the SS-MIX2 patient folder, the FHIR bundle, or the CSV."""
    check_patient_id(patient_id)
    if config.format == formats.SSMIX2:
        if config.ssmix2_root is None:
            raise ExtractError("設定 ssmix2_root（SS-MIX2 標準化ストレージ）がありません。")
        return config.ssmix2_root / patient_id[:3] / patient_id[3:6] / patient_id
    if config.format == formats.FHIR:
        if config.fhir_dir is None:
            raise ExtractError("設定 fhir_dir（患者ごとのFHIRバンドル）がありません。")
        return config.fhir_dir / f"{patient_id}.json"
    if config.csv_file is None:
        raise ExtractError("設定 csv_file（DWHのCSV出力）がありません。")
    return config.csv_file


def read_source(fmt: str, path: Path) -> Any:
    """What `mapping.formats.extract` takes for `fmt`, read from `path`."""
    try:
        data = formats.read_path(fmt, path)
    except OSError as exc:
        raise ExtractError(f"抽出データを読めません: {path}（{exc}）")
    if fmt == formats.FHIR:
        try:
            return json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise ExtractError(f"FHIRバンドルをJSONとして読めません: {path}")
    return data


def run_mapping(fmt: str, data: Any, patient_id: str, local_codes: Any, profile: Any) -> dict[str, Any]:
    """`mapping` over one patient's extract (a CSV export holds many patients: only this one's rows)."""
    if fmt == formats.CSV:
        results = mapping.extract_csv_patients(data, local_codes, profile)
        if patient_id not in results:
            raise ExtractError(f"CSVに患者 {patient_id} の行がありません。")
        return results[patient_id]
    return formats.extract(fmt, data, local_codes, profile)


def items_body(patient_id: str, fmt: str, data: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The default push: the notification items with provenance, suggestions, warnings and the hash of what
    was read — and nothing else."""
    return {
        "patient_id": check_patient_id(patient_id),
        "format": "items",
        "source_format": fmt,
        "items": result.get("items", {}),
        "provenance": result.get("provenance", {}),
        "suggestions": result.get("suggestions", {}),
        "warnings": [str(w) for w in result.get("warnings", [])],
        "source_sha256": formats.content_sha256(fmt, data),
        "mapping_version": MAPPING_VERSION,
    }


def raw_body(patient_id: str, fmt: str, data: Any) -> dict[str, Any]:
    """The raw push (the extract itself): only for debugging a mapping, where the hospital allows it."""
    check_patient_id(patient_id)
    if formats.get(fmt).reads_folder:
        return {"patient_id": patient_id, "format": fmt,
                "files": [{"path": name, "data_base64": base64.b64encode(raw).decode()} for name, raw in data.items()]}
    if fmt == formats.FHIR:
        return {"patient_id": patient_id, "format": fmt, "bundle": data}
    return {"patient_id": patient_id, "format": fmt, "csv_base64": base64.b64encode(data).decode()}


def patient_extract(config: Config, patient_id: str, tables: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """(format, what was read, mapping result) for one patient, with the hospital's mapping tables."""
    fmt = config.format
    data = read_source(fmt, patient_path(config, patient_id))
    return fmt, data, run_mapping(fmt, data, patient_id, tables.get("local_codes") or {}, tables.get("csv_profile"))
