"""`peak`: the national peak day replayed at scale.

On 2022-08-19 HER-SYS recorded 261,004 new cases, the most of any day. We generate N synthetic notifications
over H hospitals (sizes Zipf-distributed: a few large hospitals report most), replay one day compressed into
`day_seconds`: 24 hourly bursts sized by a day's reporting curve, each confirmed as fast as `confirmers` threads
(physicians) manage, while K worker processes drain the outbox. We report the throughput achieved, the time the
whole national day would take at that throughput, per-hospital latencies, the ratio to posting straight to the
sandbox, and check that the sandbox holds exactly one revision of every confirmed notification.

`day_seconds` 0 (the default since issue 13's second round): each hour's burst follows the previous one at once, so
the replay offers the day faster than the box can take it and the throughput is the box's capacity. With a
compressed day of 30 s the replay could never go faster than n / 30 s (2,000 / 30 s → 1.09 h for 261,004,
however fast the product): the figure measured the offered load, not the product. The latency a physician sees
at the national peak-hour rate is the `peakhour` benchmark's.
"""
from __future__ import annotations

import random
import time
from typing import Any

from .cpu import CpuMeter
from .pipeline import (
    allot,
    bundles_for,
    confirm_concurrently,
    direct_baseline,
    drafts_prepare,
    drain_outcome,
    wait_accepted,
)
from .stats import percentile, ratio, summary_ms

PEAK_DAY = "2022-08-19"
PEAK_DAY_CASES = 261_004
# Scale the product is designed for (DESIGN.md §5: "one publish, not work at 4,000 hospitals").
NATIONAL_HOSPITALS = 4_000
# Share of a day's notifications confirmed in each hour (JST 0-23). An assumption, not published data: few at
# night, a morning ramp as test results arrive, the peak in the early afternoon, a tail into the evening.
HOURLY_SHARE = [0.4, 0.3, 0.2, 0.2, 0.2, 0.3, 0.6, 1.5, 3.5, 6.0, 7.5, 8.0,
                7.0, 8.5, 9.0, 9.0, 8.5, 7.5, 5.5, 3.5, 2.0, 1.2, 0.8, 0.6]


def hospital_weights(h: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(h)]


def run(env, world, *, n: int, warmup: int, processes: int, concurrency: int, confirmers: int,
        day_seconds: float, direct_sample: int) -> dict[str, Any]:
    warm_drafts = drafts_prepare(world, warmup, "PW")
    drafts = drafts_prepare(world, n, "P", hospital_weights(len(world.sites)))
    random.Random(20220819).shuffle(drafts)  # every hospital reports all day long, not only in the morning
    hours = allot(list(range(24)), HOURLY_SHARE, n)
    bursts: list[list] = [[] for _ in range(24)]
    for draft, hour in zip(drafts, sorted(hours), strict=True):  # one burst per hour, in order
        bursts[hour].append(draft)

    env.purge_queue()
    workers = env.start_workers(processes, concurrency, "peak")
    lag = 0.0
    try:
        warm = confirm_concurrently(warm_drafts, confirmers)
        wait_accepted([c.delivery_id for c in warm])
        env.sandbox_reset()
        meter = CpuMeter(env, workers)
        cpu_before = meter.snapshot()

        confirmed = []
        t0 = time.time()
        slot = day_seconds / 24
        for hour, burst in enumerate(bursts):
            due = t0 + hour * slot
            now = time.time()
            if now < due:
                time.sleep(due - now)
            else:
                lag = max(lag, now - due)
            confirmed += confirm_concurrently(burst, confirmers)
        t_confirmed = time.time()
        ids = [c.delivery_id for c in confirmed]
        counts = wait_accepted(ids)
        cpu = CpuMeter.per_notification_ms([(cpu_before, meter.snapshot())], len(ids))
    finally:
        env.stop_workers(workers)

    drained = drain_outcome(env, confirmed, counts, t0, processes * concurrency)
    timings, accepted, check, rate, saturated = (drained.timings, drained.accepted, drained.check, drained.rate,
                                                 drained.saturated)

    per_hospital = []
    by_site = {s.hospital.pk: s for s in world.sites}
    for hospital_id, site in by_site.items():
        mine = [t for t in accepted if t["hospital_id"] == hospital_id]
        lat = [t["accepted"] - t["confirmed"] for t in mine]
        per_hospital.append({"hospital": site.hospital.code, "notifications": sum(
            1 for t in timings if t["hospital_id"] == hospital_id), "accepted": len(mine), **summary_ms(lat)})
    p95s = [h["p95_ms"] for h in per_hospital if h["accepted"]]

    sample = [c.delivery_id for c in warm] + ids[:direct_sample]
    direct = direct_baseline(env, bundles_for(sample), warmup=len(warm))
    peak_hour_share = max(HOURLY_SHARE) / sum(HOURLY_SHARE)
    national_peak_hour_rate = PEAK_DAY_CASES * peak_hour_share / 3600
    return {
        "name": "peak",
        "peak_day": PEAK_DAY,
        "peak_day_cases": PEAK_DAY_CASES,
        "notifications": n,
        "scale": round(n / PEAK_DAY_CASES, 6),
        "hospitals": len(world.sites),
        "workers": {"processes": processes, "concurrency": concurrency, "confirm_threads": confirmers},
        "day_seconds": day_seconds,
        # day_seconds 0: offered as fast as the confirmers go (no pacing), i.e. more than the box can take.
        "offered": {"mean_per_second": round(n / day_seconds, 2) if day_seconds else None,
                    "peak_hour_per_second": (round(max(len(b) for b in bursts) / (day_seconds / 24), 2)
                                             if day_seconds else None),
                    "burst_sizes": [len(b) for b in bursts], "max_burst_lag_s": round(lag, 3)},
        "real": {
            **drained.real,
            "confirm_seconds": round(t_confirmed - t0, 3),
        },
        "national": {
            "hours_at_this_throughput": round(PEAK_DAY_CASES / rate / 3600, 3) if rate else None,
            "hours_at_saturated_throughput": (round(PEAK_DAY_CASES / saturated[0] / 3600, 3)
                                              if saturated[0] > 0 else None),
            "required_mean_per_second": round(PEAK_DAY_CASES / 86400, 2),
            "required_peak_hour_per_second": round(national_peak_hour_rate, 2),
            "headroom_over_peak_hour": ratio(rate, national_peak_hour_rate),
            "per_hospital_mean_cases": round(PEAK_DAY_CASES / NATIONAL_HOSPITALS, 1),
            "hospitals_assumed": NATIONAL_HOSPITALS,
        },
        "per_hospital": per_hospital,
        "per_hospital_p95_ms": {"min": round(min(p95s), 3) if p95s else None,
                                "median": round(percentile(p95s, 50), 3) if p95s else None,
                                "max": round(max(p95s), 3) if p95s else None},
        "direct": direct,
        "ratios": {"throughput_real_over_direct": ratio(rate, direct["per_second"]),
                   "slowdown_direct_over_real": ratio(direct["per_second"], rate)},
        "cpu_per_notification": cpu,
        "integrity": check,
    }
