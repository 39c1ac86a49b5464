"""`delivery`: confirm → accepted throughput through the real path, against posting the same Bundles straight to
the sandbox from one process.

Real path: `notification_confirm` (revision + outbox row in one transaction, task enqueued on commit) → Redis →
Celery worker subprocess(es) on the `hersys` queue → `delivery_attempt` (claim, build the Bundle, hersys_client
over HTTPS + mutual TLS, record) → sandbox. The notifications are confirmed back to back from this process as
one burst per round; throughput is confirmed count / (last accepted − first confirm started), and the ratio
reported is the median round's.
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
    integrity_total,
    wait_accepted,
)
from .stats import ratio, summary_ms


def run(env, world, *, n: int, warmup: int, processes: int, concurrency: int, rounds: int = 1) -> dict[str, Any]:
    """`rounds` bursts of `n` each: the ratio is the median round's (a burst of a few seconds on a shared
    machine varies by ±5 %); CPU per notification and the integrity check cover every round."""
    drafts = drafts_prepare(world, warmup + n * rounds, "D")
    env.purge_queue()
    workers = env.start_workers(processes, concurrency, "delivery")
    done: list[dict[str, Any]] = []
    try:
        warm = [confirm(d) for d in drafts[:warmup]]  # imports, DB connections, token, TLS in every child
        wait_accepted([c.delivery_id for c in warm])
        meter = CpuMeter(env, workers)
        spans = []  # CPU snapshots before and after each round
        for r in range(rounds):
            env.sandbox_reset()  # the sandbox holds this round's notifications only
            cpu_before = meter.snapshot()
            t0 = time.time()
            confirmed = [confirm(d) for d in drafts[warmup + r * n:warmup + (r + 1) * n]]
            t_confirmed = time.time()
            counts = wait_accepted([c.delivery_id for c in confirmed])
            spans.append((cpu_before, meter.snapshot()))
            drained = drain_outcome(env, confirmed, counts, t0, processes * concurrency)
            done.append({"confirmed": confirmed, "drained": drained, "confirm_seconds": t_confirmed - t0})
        cpu = CpuMeter.per_notification_ms(spans, n * rounds)
    finally:
        env.stop_workers(workers)

    ids = [c.delivery_id for d in done for c in d["confirmed"]]
    direct = direct_baseline(env, bundles_for([c.delivery_id for c in warm] + ids), warmup=len(warm))
    by_rate = sorted(done, key=lambda d: d["drained"].rate)
    median = by_rate[len(by_rate) // 2]
    real_rate = median["drained"].rate
    return {
        "name": "delivery",
        "notifications": n * rounds,
        "rounds": rounds,
        "round_ratios": [ratio(d["drained"].rate, direct["per_second"]) for d in done],
        "workers": {"processes": processes, "concurrency": concurrency},
        "real": {  # the median round
            **median["drained"].real,
            "confirm_per_second": round(n / median["confirm_seconds"], 2),
            "confirm_call": summary_ms([c.took for c in median["confirmed"]]),
        },
        "direct": direct,
        "ratios": {"throughput_real_over_direct": ratio(real_rate, direct["per_second"]),
                   "slowdown_direct_over_real": ratio(direct["per_second"], real_rate)},
        "cpu_per_notification": cpu,
        "integrity": integrity_total([d["drained"].check for d in done]),
    }
