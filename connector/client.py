"""The data centre, seen from the hospital DMZ: outbound HTTPS only, the connector key in every request, a few
retries with backoff for connection errors and 5xx/429 (never for a refusal such as 400/401/403)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from .config import Config

USER_AGENT = "hersys-connector/2"
RETRYABLE = {429, 500, 502, 503, 504}


class Unreachable(Exception):
    """The data centre could not be reached (after the retries)."""


class Refused(Exception):
    """The data centre answered with a refusal; the message is its `detail`."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text[:500])
    except (ValueError, AttributeError):
        return response.text[:500]


class DataCentre:
    def __init__(self, config: Config, transport: httpx.BaseTransport | None = None, sleep=time.sleep):
        self.config = config
        self.sleep = sleep
        self.http = httpx.Client(base_url=config.url, timeout=config.timeout, transport=transport,
                                 headers={"Authorization": f"Api-Key {config.api_key}", "User-Agent": USER_AGENT},
                                 verify=config.ca or True)

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        attempts = max(1, self.config.retries)
        for attempt in range(attempts):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise Unreachable(f"データセンターに接続できません（{type(exc).__name__}）。")
            else:
                if response.status_code not in RETRYABLE:
                    if response.status_code >= 400:
                        raise Refused(response.status_code, _detail(response))
                    return response
                if attempt + 1 == attempts:
                    raise Unreachable(f"データセンターが一時的に応答できません（HTTP {response.status_code}）。")
            self.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise Unreachable("データセンターに接続できません。")

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/extracts", json=body).json()

    def feed(self, since: str | None) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/notifications", params={"since": since} if since else None).json()["results"]

    def document(self, notification_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/notifications/{notification_id}/document").json()

    def pdf(self, notification_id: str) -> bytes:
        return self.request("GET", f"/api/v1/notifications/{notification_id}/document.pdf").content

    def mapping_tables(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/mapping").json()


def mapping_tables(config: Config, centre: DataCentre | None) -> dict[str, Any]:
    """The hospital's local code table and CSV profile: the local files when configured, else the data centre's
    (kept by the central admins), cached under state_dir for when it cannot be reached."""
    tables: dict[str, Any] = {}
    cache = Path(config.state_dir) / "mapping-tables.json"
    if config.local_codes is None or (config.format == "csv" and config.csv_profile is None):
        try:
            if centre is None:
                raise Unreachable("")
            tables = centre.mapping_tables()
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(tables, ensure_ascii=False), encoding="utf-8")
        except (Unreachable, Refused):
            if cache.exists():
                tables = json.loads(cache.read_text(encoding="utf-8"))
    if config.local_codes is not None:
        tables["local_codes"] = json.loads(Path(config.local_codes).read_text(encoding="utf-8-sig"))
    if config.csv_profile is not None:
        tables["csv_profile"] = json.loads(Path(config.csv_profile).read_text(encoding="utf-8-sig"))
    return tables
