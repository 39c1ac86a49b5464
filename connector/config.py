"""The connector's configuration file (TOML), written once by the hospital's IT department.

    url = "https://hersys-assist.example.jp"      # the data centre (outbound HTTPS only)
    key_file = "/etc/hersys-connector/key"        # the connector key, shown once when created (mode 600)
    ca = "/etc/hersys-connector/ca.pem"           # optional: the CA of the data centre's certificate
    format = "ss-mix2"                            # ss-mix2 | fhir | csv: what the EMR exports
    ssmix2_root = "/mnt/ssmix2/standard"          # SS-MIX2 standard storage (標準化ストレージ)
    extended_root = "/mnt/ssmix2/extended"        # SS-MIX2 extended storage (拡張ストレージ) for write-back
    fhir_dir = "/var/emr/fhir"                    # fhir: one bundle per patient, <patient id>.json
    csv_file = "/var/emr/dwh/covid.csv"           # csv: the DWH export
    local_codes = "/etc/hersys-connector/local-codes.json"  # optional: else the data centre's table is used
    csv_profile = "/etc/hersys-connector/profile.json"      # optional, csv only
    out_dir = "/var/emr/hersys"                   # write-back: one folder per patient
    state_dir = "/var/lib/hersys-connector"       # cursor, queue, cached mapping tables
    raw = false                                   # true: send the raw extract (only if the hospital allows it)
    [facility]                                    # for `print` when the data centre cannot be reached
    name = "さくら総合病院"; address = "…"; phone = "…"

Relative paths are relative to the file. `HERSYS_CONNECTOR_CONFIG` names the file when `--config` is not given.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mapping import formats

DEFAULT_NAME = "connector.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix (Japanese)."""


@dataclass
class Config:
    url: str
    api_key: str
    format: str = formats.SSMIX2
    ca: str | None = None
    ssmix2_root: Path | None = None
    extended_root: Path | None = None
    fhir_dir: Path | None = None
    csv_file: Path | None = None
    local_codes: Path | None = None
    csv_profile: Path | None = None
    out_dir: Path | None = None
    state_dir: Path = Path(".hersys-connector")
    raw: bool = False
    timeout: float = 30.0
    retries: int = 3
    form_version: str | None = None
    facility: dict[str, str] = field(default_factory=dict)


PATHS = ("ssmix2_root", "extended_root", "fhir_dir", "csv_file", "local_codes", "csv_profile", "out_dir", "state_dir")


def load(path: str | os.PathLike | None = None, *, url: str | None = None, api_key: str | None = None,
         remote: bool = True) -> Config:
    """The configuration from the file (if any), with `url` / `api_key` given on the command line winning.
    `remote=False` (printing the paper form) needs neither."""
    data: dict = {}
    base = Path.cwd()
    path = path or os.environ.get("HERSYS_CONNECTOR_CONFIG") or (DEFAULT_NAME if Path(DEFAULT_NAME).exists() else None)
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"設定ファイルを読めません: {file}（{exc.strerror}）")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"設定ファイルの書き方が正しくありません: {file}（{exc}）")
        base = file.resolve().parent
    unknown = set(data) - {*Config.__dataclass_fields__, "key_file"}
    if unknown:
        raise ConfigError(f"設定ファイルに知らない項目があります: {', '.join(sorted(unknown))}")
    key = api_key
    if key is None and data.get("key_file") and remote:
        key_path = (base / data.pop("key_file")).resolve()
        try:
            key = key_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"鍵ファイルを読めません: {key_path}（{exc.strerror}）")
    data.pop("key_file", None)
    url = url or data.pop("url", None)
    data.pop("url", None)
    if remote and (not url or not key):
        raise ConfigError("データセンターのURL（url）と連携用APIキー（key_file）を設定してください。")
    for name in PATHS:
        if data.get(name) is not None:
            data[name] = (base / data[name]).resolve()
    config = Config(url=(url or "").rstrip("/"), api_key=key or "", **data)
    if config.format not in formats.FORMATS:
        raise ConfigError(f"format は {' / '.join(formats.FORMATS)} のいずれかにしてください。")
    return config
