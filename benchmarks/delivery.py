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
    direct_baseline,
    drafts_prepare,
    drain_outcome,
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

    drained = drain_outcome(env, confirmed, counts, t0, processes * concurrency)
    check, real_rate = drained.check, drained.rate

    direct = direct_baseline(env, bundles_for([c.delivery_id for c in warm] + ids), warmup=len(warm))
    return {
        "name": "delivery",
        "notifications": n,
        "workers": {"processes": processes, "concurrency": concurrency},
        "real": {
            **drained.real,
            "confirm_per_second": round(n / (t_confirmed - t0), 2),
            "confirm_call": summary_ms([c.took for c in confirmed]),
        },
        "direct": direct,
        "ratios": {"throughput_real_over_direct": ratio(real_rate, direct["per_second"]),
                   "slowdown_direct_over_real": ratio(direct["per_second"], real_rate)},
        "cpu_per_notification": cpu,
        "integrity": check,
    }
