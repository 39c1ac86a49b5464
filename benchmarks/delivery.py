"""`delivery`: confirm → accepted throughput through the real path, against posting the same Bundles straight to
the sandbox from one process.

Real path: `notification_confirm` (revision + outbox row in one transaction, task enqueued on commit) → Redis →
Celery worker subprocess(es) on the `hersys` queue → `delivery_attempt` (claim, build the Bundle, hersys_client
over HTTPS + mutual TLS, record) → sandbox. The notifications are confirmed back to back from this process as
one burst; throughput is confirmed count / (last accepted − first confirm started).
"""
from __future__ import annotations

import time
from typing import Any

from .cpu import CpuMeter
from .pipeline import (
    bundles_for,
    confirm,
    delivery_timings,
    direct_baseline,
    drafts_prepare,
    failure_reasons,
    latency_summary,
    max_backlog,
    sandbox_check,
    saturated_rate,
    wait_accepted,
)
from .stats import ratio, summary_ms


def run(env, world, *, n: int, warmup: int, processes: int, concurrency: int) -> dict[str, Any]:
    drafts = drafts_prepare(world, warmup + n, "D")
    env.purge_queue()
    workers = env.start_workers(processes, concurrency, "delivery")
    try:
        warm = [confirm(d) for d in drafts[:warmup]]  # imports, DB connections, token, TLS in every child
        wait_accepted([c.delivery_id for c in warm])
        env.sandbox_reset()
        meter = CpuMeter(env, workers)
        cpu_before = meter.snapshot()  # the sandbox holds the measured notifications only

        t0 = time.time()
        confirmed = [confirm(d) for d in drafts[warmup:]]
        t_confirmed = time.time()
        ids = [c.delivery_id for c in confirmed]
        counts = wait_accepted(ids)
        cpu = CpuMeter.per_notification_ms(cpu_before, meter.snapshot(), len(ids))
    finally:
        env.stop_workers(workers)

    timings = delivery_timings(ids)
    accepted = [t for t in timings if t["status"] == "accepted"]
    last = max((t["accepted"] for t in accepted), default=t0)
    real_rate = len(accepted) / (last - t0) if accepted else 0.0
    saturated = saturated_rate(timings, processes * concurrency)
    check = sandbox_check(env.sandbox, {c.notification_uuid for c in confirmed})
    check["extra_attempts"] = sum(t["tries"] - 1 for t in timings)
    check["status_counts"] = counts
    check["failures"] = failure_reasons(ids) if counts.get("accepted", 0) != len(ids) else []

    direct = direct_baseline(env, bundles_for([c.delivery_id for c in warm] + ids), warmup=len(warm))
    return {
        "name": "delivery",
        "notifications": n,
        "workers": {"processes": processes, "concurrency": concurrency},
        "real": {
            "per_second": round(real_rate, 2),
            "seconds": round(last - t0, 3),
            "confirm_per_second": round(n / (t_confirmed - t0), 2),
            "confirm_call": summary_ms([c.took for c in confirmed]),
            **latency_summary(timings),
            "max_backlog": max_backlog(timings),
            "saturated_per_second": round(saturated[0], 2),
            "saturated_seconds": round(saturated[1], 3),
        },
        "direct": direct,
        "ratios": {"throughput_real_over_direct": ratio(real_rate, direct["per_second"]),
                   "slowdown_direct_over_real": ratio(direct["per_second"], real_rate)},
        "cpu_per_notification": cpu,
        "integrity": check,
    }
