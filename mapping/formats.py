"""The EMR extract formats, decided in one place: which formats exist, how each is read from disk (connector,
CLI, demo) and how each is extracted from what was read (data centre, connector).

    data = read_path("ss-mix2", folder)            # {relative path: bytes} | bytes
    result = extract("ss-mix2", data, codes)       # {"items", "provenance", "warnings", "suggestions"}
    digest = content_sha256("ss-mix2", data)       # what was read, for the audit trail
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .csvdwh import extract_csv
from .fhir import extract_fhir
from .ssmix2 import extract_ssmix2_files, read_patient_dir

SSMIX2 = "ss-mix2"
FHIR = "fhir"
CSV = "csv"


class UnknownFormat(ValueError):
    """Not one of FORMATS; the message is for people (Japanese)."""


@dataclass(frozen=True)
class ExtractFormat:
    key: str
    label: str
    reads_folder: bool  # an SS-MIX2 patient folder, or one file
    _extract: Callable[[Any, Any, Any], dict[str, Any]]


REGISTRY: dict[str, ExtractFormat] = {
    SSMIX2: ExtractFormat(SSMIX2, "SS-MIX2標準化ストレージ", True,
                          lambda data, codes, profile: extract_ssmix2_files(data, codes)),
    FHIR: ExtractFormat(FHIR, "FHIR R4 Bundle", False, lambda data, codes, profile: extract_fhir(data, codes)),
    CSV: ExtractFormat(CSV, "DWH CSV", False, lambda data, codes, profile: extract_csv(data, codes, profile)),
}
FORMATS: tuple[str, ...] = tuple(REGISTRY)


def get(fmt: str) -> ExtractFormat:
    try:
        return REGISTRY[fmt]
    except (KeyError, TypeError):
        raise UnknownFormat(f"未対応の形式です: {str(fmt)[:40]}（{' / '.join(FORMATS)} のいずれか）")


def read_path(fmt: str, path: str | Path) -> dict[str, bytes] | bytes:
    """What the extraction of `fmt` reads from disk: a patient folder's files, or one file's bytes."""
    path = Path(path)
    if get(fmt).reads_folder:
        files, error = read_patient_dir(path)
        if error:
            raise FileNotFoundError(error)
        return files
    if not path.is_file():
        raise FileNotFoundError(f"ファイルが存在しません: {path}" if not path.exists() else f"ファイルではありません: {path}")
    return path.read_bytes()


def extract(fmt: str, data: Any, local_codes: Any = None, profile: Any = None) -> dict[str, Any]:
    """Items with provenance from what `read_path` (or a connector push) gave. Never raises for bad data; an
    unknown format raises UnknownFormat."""
    return get(fmt)._extract(data, local_codes, profile)


def content_sha256(fmt: str, data: Any) -> str:
    """A stable digest of what was read (kept instead of the raw EMR data)."""
    if isinstance(data, dict) and get(fmt).reads_folder:
        raw = b"".join(k.encode("utf-8", "surrogatepass") + v for k, v in sorted(data.items()))
    elif isinstance(data, (dict, list)):
        raw = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    elif isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
    else:
        raw = bytes(data)
    return hashlib.sha256(raw).hexdigest()
