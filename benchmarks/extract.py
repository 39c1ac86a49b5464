"""`extract`: the connector's extraction — read an SS-MIX2 patient folder or a FHIR bundle file from disk and map
it to items with provenance (`mapping.formats.read_path` + `extract`), as the connector does before a push.

Pure Python, no database: every demo patient (SS-MIX2 folders and FHIR bundles under demo/emr-samples) in
rotation for about `seconds` seconds. Reported: extractions per second over both formats (`extract_per_s`) and per
format, and the median per patient.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .stats import summary_ms

DEMO_SAMPLES = Path(__file__).resolve().parent.parent / "demo" / "emr-samples"


def sources() -> list[tuple[str, Path]]:
    """(format, path) of every demo patient: SS-MIX2 folders <3>/<3>/<id>, FHIR bundle files."""
    from mapping import formats

    folders = sorted(p for p in (DEMO_SAMPLES / "ss-mix2").glob("*/*/*") if p.is_dir())
    bundles = sorted((DEMO_SAMPLES / "fhir").glob("*.json"))
    return [(formats.SSMIX2, p) for p in folders] + [(formats.FHIR, p) for p in bundles]


def run(*, seconds: float) -> dict[str, Any]:
    import mapping
    from mapping import formats

    codes = mapping.load_local_codes(DEMO_SAMPLES / "local-codes.json")
    todo = sources()
    if not todo:
        raise RuntimeError(f"no demo extracts under {DEMO_SAMPLES}")
    per_format: dict[str, list[float]] = {fmt: [] for fmt, _ in todo}
    items = 0

    def one(fmt: str, path: Path) -> int:
        result = formats.extract(fmt, formats.read_path(fmt, path), codes)
        return len(result["items"])

    for fmt, path in todo:  # warm-up: imports, code tables
        one(fmt, path)
    t_end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    rounds = 0
    while True:
        for fmt, path in todo:
            t = time.perf_counter()
            items += one(fmt, path)
            per_format[fmt].append(time.perf_counter() - t)
        rounds += 1
        if time.perf_counter() >= t_end:
            break
    wall = time.perf_counter() - t0
    n = sum(len(v) for v in per_format.values())
    return {
        "name": "extract",
        "patients": {fmt: sum(1 for f, _ in todo if f == fmt) for fmt in per_format},
        "rounds": rounds,
        "extractions": n,
        "items_per_extraction": round(items / n, 1),
        "extract_per_s": round(n / wall, 1),
        "per_format": {fmt: {"per_s": round(len(t) / sum(t), 1), **summary_ms(t)} for fmt, t in per_format.items()},
    }
