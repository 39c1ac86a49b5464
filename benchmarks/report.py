"""Readable tables on stdout; the JSON file is the complete record."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 10 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(header))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [f"\n■ {title}", line]
    for i, row in enumerate(cells):
        out.append("| " + " | ".join(_pad(c, w, i > 0 and j > 0) for j, (c, w) in enumerate(zip(row, widths,
                                                                                               strict=True))) + " |")
        if i == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def _width(text: str) -> int:
    """Display width: East Asian wide characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def launch_table(r: dict[str, Any]) -> str:
    s, b = r["steps"], r["baseline"]
    rows = [[label, s[k]["median_ms"], s[k]["p95_ms"], s[k]["n"]] for label, k in [
        ("connector push (POST /api/v1/extracts)", "push"), ("launch URL (GET → the form)", "launch_form"),
        ("whole launch flow (push + launch)", "flow_total"), ("re-open: form URL (GET)", "form_get")]]
    rows.append([f"baseline: bare view, {r['form_fields']} fields", b["median_ms"], b["p95_ms"], b["n"]])
    ratios = r["ratios"]
    rows.append(["ratio form GET / baseline", ratios["form_get_median"], ratios["form_get_p95"], ""])
    rows.append(["ratio whole flow / baseline", ratios["flow_median"], ratios["flow_p95"], ""])
    return table("launch 起動→事前入力済みフォーム (per request)", ["step", "median ms", "p95 ms", "n"], rows) + (
        "\n  SQL statements: push {push}, launch {launch_form}, form {form_get} (baseline {baseline});"
        .format(**r["sql_queries"]) +
        f" page {r['page_bytes']['product']:,} B (baseline {r['page_bytes']['baseline']:,} B)")


def _pipeline_rows(r: dict[str, Any]) -> list[list[Any]]:
    real, direct = r["real"], r["direct"]
    c2a = real["confirm_to_accepted"]
    return [
        ["real path notifications/s (first confirm → last accepted)", real["per_second"]],
        [f"real path /s while all worker slots busy ({real['saturated_seconds']:.1f} s)",
         real["saturated_per_second"] if real["saturated_per_second"] is not None else "— (never every slot busy)"],
        [f"direct to sandbox notifications/s (1 process, n={direct['notifications']})", direct["per_second"]],
        ["ratio real / direct", r["ratios"]["throughput_real_over_direct"]],
        ["confirm → accepted median ms", c2a["median_ms"]],
        ["confirm → accepted p95 ms", c2a["p95_ms"]],
        ["confirm → accepted p99 ms", c2a["p99_ms"]],
        ["queue wait (confirm → first try) median ms", real["confirm_to_first_try"]["median_ms"]],
        ["send (first try → accepted) median ms", real["first_try_to_accepted"]["median_ms"]],
        ["direct POST median ms", direct["post"]["median_ms"]],
        ["max backlog (confirmed, not yet accepted)", real["max_backlog"]],
    ] + _cpu_rows(r)


def _cpu_rows(r: dict[str, Any]) -> list[list[Any]]:
    cpu = r.get("cpu_per_notification") or {}
    if not cpu:
        return []
    parts = [("confirming process", "bench_process_ms"), ("workers", "workers_ms"),
             ("  of which the workers' main processes", "workers_parent_ms"), ("sandbox", "sandbox_ms"),
             ("PostgreSQL", "postgresql_ms"), ("Redis", "redis_ms"), ("rest of the machine", "other_ms"),
             ("whole machine", "machine_ms")]
    return [[f"CPU ms per notification: {label}", cpu.get(key)] for label, key in parts]


def _integrity_rows(r: dict[str, Any]) -> list[list[Any]]:
    i = r["integrity"]
    return [["confirmed / received by sandbox", f"{i['confirmed']:,} / {i['received']:,}"],
            ["lost / duplicated / unexpected", f"{i['lost']} / {i['duplicated']} / {i['unexpected']}"],
            ["extra attempts (retries)", i["extra_attempts"]],
            ["final statuses", ", ".join(f"{k} {v:,}" for k, v in sorted(i["status_counts"].items()))],
            *[["failure", f] for f in i.get("failures", [])]]


def delivery_table(r: dict[str, Any]) -> str:
    w = r["workers"]
    rounds = r.get("rounds", 1)
    rows = [["notifications", r["notifications"] if rounds == 1 else
             f"{r['notifications']} ({rounds} rounds of {r['notifications'] // rounds})"],
            ["workers", f"{w['processes']} process × {w['concurrency']}"],
            *([["ratio real / direct of each round (median reported)",
                " / ".join(_fmt(x) for x in r["round_ratios"])]] if rounds > 1 else []),
            ["confirm rate (this process) /s", r["real"]["confirm_per_second"]],
            ["confirm call median ms", r["real"]["confirm_call"]["median_ms"]],
            *_pipeline_rows(r), *_integrity_rows(r)]
    return table("delivery 確定→受理 (throughput)", ["measure", "value"], rows)


def peak_table(r: dict[str, Any]) -> str:
    w, nat, o = r["workers"], r["national"], r["offered"]
    rows = [["notifications (scale of 261,004)", f"{r['notifications']:,} ({r['scale']:.4f})"],
            ["hospitals (Zipf sizes)", r["hospitals"]],
            ["workers", f"{w['processes']} processes × {w['concurrency']}, {w['confirm_threads']} confirm threads"],
            ["day compressed into s", r["day_seconds"] or "0 (bursts back to back: capacity)"],
            ["offered mean / peak-hour /s", f"{o['mean_per_second']} / {o['peak_hour_per_second']}"
             if r["day_seconds"] else "as fast as the confirm threads go"],
            *_pipeline_rows(r),
            [f"hours for {r['peak_day_cases']:,} at this throughput", nat["hours_at_this_throughput"]],
            [f"hours for {r['peak_day_cases']:,} at the saturated throughput", nat["hours_at_saturated_throughput"]],
            ["national need: mean / peak-hour /s",
             f"{nat['required_mean_per_second']} / {nat['required_peak_hour_per_second']}"],
            ["headroom over the national peak hour", nat["headroom_over_peak_hour"]],
            [f"national mean per hospital ({nat['hospitals_assumed']:,})", nat["per_hospital_mean_cases"]],
            ["per-hospital p95 ms min / median / max",
             " / ".join(_fmt(r["per_hospital_p95_ms"][k]) for k in ("min", "median", "max"))],
            *_integrity_rows(r)]
    top = sorted(r["per_hospital"], key=lambda h: -h["notifications"])[:5]
    hosp = table("peak: largest hospitals", ["hospital", "notifications", "median ms", "p95 ms", "max ms"],
                 [[h["hospital"], h["notifications"], h["median_ms"], h["p95_ms"], h["max_ms"]] for h in top])
    return table(f"peak 全国ピーク日 {r['peak_day']} replay", ["measure", "value"], rows) + hosp


def peakhour_table(r: dict[str, Any]) -> str:
    c2a = r["real"]["confirm_to_accepted"]
    rows = [["notifications", r["notifications"]],
            ["rate target / offered /s", f"{r['rate_target_per_second']} / {_fmt(r['rate_offered_per_second'])}"],
            ["workers", f"{r['workers']['processes']} processes × {r['workers']['concurrency']}"],
            ["confirm → accepted median / p95 / p99 ms",
             f"{_fmt(c2a['median_ms'])} / {_fmt(c2a['p95_ms'])} / {_fmt(c2a['p99_ms'])}"],
            ["peak RSS MB: worker (parent + pool) / beat", f"{_fmt(r['rss_mb_worker'])} / {_fmt(r['rss_mb_beat'])}"],
            *_integrity_rows(r)]
    return table("peakhour ピーク時間帯の速度での確定→受理", ["measure", "value"], rows)


def extract_table(r: dict[str, Any]) -> str:
    rows = [[f"{fmt} ({r['patients'][fmt]} patients)", f["per_s"], f["median_ms"], f["p95_ms"]]
            for fmt, f in r["per_format"].items()]
    rows.append(["both formats", r["extract_per_s"], "", ""])
    return table("extract コネクタの抽出 (read + map)", ["format", "per s", "median ms", "p95 ms"], rows)


def browser_table(r: dict[str, Any]) -> str:
    t = r["tti"]
    rows = [["form usable (first input typed), median / p95 ms", f"{_fmt(t['median_ms'])} / {_fmt(t['p95_ms'])}"],
            ["transferred bytes / requests", f"{r['transferred_bytes']:,} / {r['requests']}"],
            ["web server peak RSS MB (gunicorn, 1 worker)", r["rss_mb_web"]]]
    return table(f"browser Chromium, CPU ×{r['cpu_throttling_rate']} throttled ({r['rounds']} rounds)",
                 ["measure", "value"], rows)


TABLES = {"launch": launch_table, "delivery": delivery_table, "peak": peak_table, "peakhour": peakhour_table,
          "extract": extract_table, "browser": browser_table}

# The figures of merit (issue 13), flat at the top of the JSON: key → (benchmark, path in its result).
HEADLINE = {
    "form_render_ratio": ("launch", ("ratios", "form_get_median")),
    "launch_flow_ratio": ("launch", ("ratios", "flow_median")),
    "delivery_ratio": ("delivery", ("ratios", "throughput_real_over_direct")),
    "worker_cpu_ms": ("delivery", ("cpu_per_notification", "workers_ms")),
    "confirm_cpu_ms": ("delivery", ("cpu_per_notification", "bench_process_ms")),
    "peak_day_hours": ("peak", ("national", "hours_at_this_throughput")),
    "peak_p95_ms": ("peakhour", ("peak_p95_ms",)),
    "extract_per_s": ("extract", ("extract_per_s",)),
    "form_tti_ms_throttled": ("browser", ("form_tti_ms_throttled",)),
    "rss_mb_web": ("browser", ("rss_mb_web",)),
    "rss_mb_worker": ("peakhour", ("rss_mb_worker",)),
    "rss_mb_beat": ("peakhour", ("rss_mb_beat",)),
}
# The bars of issue 13: key → (comparison, bar).
TARGETS = {"form_render_ratio": ("<=", 1.3), "launch_flow_ratio": ("<=", 2.0), "delivery_ratio": (">=", 0.25),
           "worker_cpu_ms": ("<=", 6.0), "confirm_cpu_ms": ("<=", 4.0), "peak_day_hours": ("<", 1.0),
           "peak_p95_ms": ("<", 2000.0)}


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Every HEADLINE key (None when its benchmark did not run or failed)."""
    out: dict[str, Any] = {}
    for key, (bench, path) in HEADLINE.items():
        value: Any = results["benchmarks"].get(bench)
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out


def render_headline(results: dict[str, Any]) -> str:
    rows = []
    for key in HEADLINE:
        value = results.get(key)
        bar = TARGETS.get(key)
        verdict = ""
        if bar and isinstance(value, (int, float)) and math.isfinite(value):
            op, limit = bar
            ok = {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
            verdict = ("met" if ok else "NOT met") + f" ({op} {limit:g})"
        rows.append([key, value, verdict])
    return table("figures of merit (issue 13)", ["key", "value", "target"], rows)


def render(results: dict[str, Any]) -> str:
    parts = [TABLES[name](r) + _load_line(r) for name, r in results["benchmarks"].items()
             if name in TABLES and "error" not in r]
    parts += [f"\n■ {name}: FAILED — {r['error']}" for name, r in results["benchmarks"].items() if "error" in r]
    return "\n".join(parts)


def _finite(value: Any) -> Any:
    """NaN/inf (a figure that could not be measured) become null: the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _load_line(r: dict[str, Any]) -> str:
    load = r.get("loadavg_1min") or {}
    return (f"\n  {r.get('wall_seconds', '?')} s; load average (1 min) before / after:"
            f" {_fmt(load.get('before'))} / {_fmt(load.get('after'))}")


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(results), ensure_ascii=False, indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
