"""python -m benchmarks [--quick | --smoke] [--only launch,delivery,peak] [--out bench-results/x.json]"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .env import ROOT, BenchEnv, BenchSetupError

NAMES = ("launch", "delivery", "peak", "peakhour", "extract", "browser")


@dataclass
class Profile:
    launch_iterations: int
    launch_warmup: int
    delivery_n: int
    delivery_warmup: int
    delivery_processes: int
    delivery_concurrency: int
    peak_n: int
    peak_warmup: int
    peak_hospitals: int
    peak_processes: int
    peak_concurrency: int
    peak_confirmers: int
    peak_day_seconds: float
    peak_direct_sample: int
    peakhour_seconds: float = 30.0
    extract_seconds: float = 5.0
    browser_rounds: int = 5
    delivery_rounds: int = 3


PROFILES = {
    # `make bench`: about 6-8 minutes on 2 cores.
    # peak_day_seconds 0: the peak replay offers the day as fast as it is taken (capacity; see benchmarks/peak.py),
    # by 4 confirming threads: 2 left the box idle while each waited for its commit (80/s vs 97/s, same run).
    "full": Profile(200, 20, 500, 8, 1, 2, 2000, 8, 20, 2, 2, 4, 0.0, 500,
                    peakhour_seconds=30.0, extract_seconds=5.0, browser_rounds=5),
    # `--quick`: under 2 minutes.
    "quick": Profile(40, 5, 100, 4, 1, 2, 200, 4, 5, 2, 2, 4, 0.0, 200,
                     peakhour_seconds=10.0, extract_seconds=2.0, browser_rounds=3),
    # `--smoke` (tests/benchmarks): the smallest run that exercises every code path.
    "smoke": Profile(3, 1, 5, 2, 1, 1, 12, 2, 3, 1, 1, 1, 1.0, 12,
                     peakhour_seconds=1.0, extract_seconds=0.2, browser_rounds=1, delivery_rounds=2),
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small N (under 2 minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny N, for the test suite")
    p.add_argument("--only", default=",".join(NAMES), help="comma-separated subset of: " + ", ".join(NAMES))
    p.add_argument("--out", type=Path, help="JSON result file (default bench-results/bench-<time>.json)")
    p.add_argument("--db-name", default="hersys_bench", help="database created and dropped on DATABASE_URL's server")
    p.add_argument("--redis-db", type=int, default=14, help="Redis database number used and flushed (not REDIS_URL's)")
    p.add_argument("--sandbox-latency-ms", type=int, default=0, help="added by the sandbox to every request")
    p.add_argument("--peak-n", type=int, help="synthetic notifications of the peak replay")
    p.add_argument("--delivery-n", type=int, help="notifications per round of the delivery benchmark")
    p.add_argument("--workers", type=int, help="worker processes of the peak replay (K)")
    p.add_argument("--confirmers", type=int, help="confirming threads (physicians) of the peak replay")
    p.add_argument("--peak-day-seconds", type=float,
                   help="pace the peak replay's 24 hourly bursts over this many seconds (default 0: back to back)")
    p.add_argument("--concurrency", type=int, help="pool children per worker process")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (worker/sandbox logs)")
    args = p.parse_args(argv)
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(args.only) - set(NAMES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def profile_for(args: argparse.Namespace) -> tuple[str, Profile]:
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    prof = Profile(**asdict(PROFILES[name]))
    if args.peak_n:
        prof.peak_n = args.peak_n
    if args.delivery_n:
        prof.delivery_n = args.delivery_n
    if args.workers:
        prof.peak_processes = args.workers
    if args.confirmers:
        prof.peak_confirmers = args.confirmers
    if args.peak_day_seconds is not None:
        prof.peak_day_seconds = args.peak_day_seconds
    if args.concurrency:
        prof.delivery_concurrency = prof.peak_concurrency = args.concurrency
    return name, prof


def _sigterm(signum, frame):  # turn SIGTERM into the same clean-up path as Ctrl-C
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> dict[str, Any]:
    name, prof = profile_for(args)
    results: dict[str, Any] = {
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "profile": name,
        "parameters": asdict(prof),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "benchmarks": {},
    }
    t_run = time.perf_counter()
    with BenchEnv(db_name=args.db_name, redis_db=args.redis_db, sandbox_latency_ms=args.sandbox_latency_ms,
                  keep_tmp=args.keep_tmp) as env:
        results["machine"].update(env.versions)
        results["sandbox_latency_ms"] = args.sandbox_latency_ms
        from .world import world_create

        hospitals = max(prof.peak_hospitals, 1) if "peak" in args.only else 3
        world = world_create(hospitals)
        results["templates"] = len(world.templates)
        for bench in NAMES:
            if bench not in args.only:
                continue
            print(f"benchmarks: running {bench} …", flush=True)
            t, load_before = time.perf_counter(), _loadavg()
            try:
                results["benchmarks"][bench] = _one(bench, env, world, prof)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                env.failed = True
                traceback.print_exc()
                results["benchmarks"][bench] = {"name": bench, "error": f"{type(exc).__name__}: {exc}"}
            results["benchmarks"][bench]["wall_seconds"] = round(time.perf_counter() - t, 1)
            # Other work on the machine skews figures (ratios less so): keep a trace of it.
            results["benchmarks"][bench]["loadavg_1min"] = {"before": load_before, "after": _loadavg()}
    results["wall_seconds"] = round(time.perf_counter() - t_run, 1)
    from .report import headline

    results.update(headline(results))  # the figures of merit, flat at the top of the file
    return results


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _one(bench: str, env: BenchEnv, world, prof: Profile) -> dict[str, Any]:
    if bench == "launch":
        from . import launch

        return launch.run(world, iterations=prof.launch_iterations, warmup=prof.launch_warmup)
    if bench == "delivery":
        from . import delivery

        return delivery.run(env, world, n=prof.delivery_n, warmup=prof.delivery_warmup,
                            processes=prof.delivery_processes, concurrency=prof.delivery_concurrency,
                            rounds=prof.delivery_rounds)
    if bench == "peakhour":
        from . import peakhour

        return peakhour.run(env, world, seconds=prof.peakhour_seconds, warmup=prof.peak_warmup,
                            processes=prof.peak_processes, concurrency=prof.peak_concurrency)
    if bench == "extract":
        from . import extract

        return extract.run(seconds=prof.extract_seconds)
    if bench == "browser":
        from . import browser

        return browser.run(env, world, rounds=prof.browser_rounds)
    from . import peak

    return peak.run(env, world, n=prof.peak_n, warmup=prof.peak_warmup, processes=prof.peak_processes,
                    concurrency=prof.peak_concurrency, confirmers=prof.peak_confirmers,
                    day_seconds=prof.peak_day_seconds, direct_sample=prof.peak_direct_sample)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        results = run(args)
    except BenchSetupError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchmarks: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    from .report import render, render_headline, write_json

    out = args.out or ROOT / "bench-results" / f"bench-{datetime.now():%Y%m%d-%H%M%S}.json"
    write_json(results, out)
    print(render(results))
    print(render_headline(results))
    print(f"\nbenchmarks: {results['wall_seconds']} s; JSON written to {out}")
    return 1 if any("error" in r for r in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
