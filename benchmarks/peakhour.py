"""`peakhour`: confirm → accepted latency at the national peak-hour rate (7.1 notifications/s under the reporting
curve of `peak`), offered steadily — the latency a physician sees on the busiest hour of the busiest day, as
opposed to the compressed replay of `peak`, which offers many times that rate.

One confirming thread paces confirmations at `rate` per second for `seconds` seconds (a late one is sent at once,
not skipped) while K = 2 worker processes × 2 drain the outbox. Reported: the rate achieved, confirm → accepted
percentiles (`peak_p95_ms` is the p95), zero lost / zero duplicated, and the peak resident memory of the workers
(`rss_mb_worker`) and of a Celery beat process run next to them (`rss_mb_beat`).
"""
from __future__ import annotations

import time
from typing import Any

from .pipeline import confirm, drafts_prepare, drain_outcome, wait_accepted
from .rss import beat_peak_rss_mb, tree_peak_rss_mb

PEAK_HOUR_RATE = 7.1  # /s: 9 % of 261,004 in one hour (peak.HOURLY_SHARE at 14-15 h)


def run(env, world, *, seconds: float, warmup: int, processes: int, concurrency: int,
        rate: float = PEAK_HOUR_RATE) -> dict[str, Any]:
    n = max(int(round(seconds * rate)), 1)
    drafts = drafts_prepare(world, warmup + n, "H")
    env.purge_queue()
    workers = env.start_workers(processes, concurrency, "peakhour")
    try:
        warm = [confirm(d) for d in drafts[:warmup]]
        wait_accepted([c.delivery_id for c in warm])
        env.sandbox_reset()
        t0 = time.time()
        confirmed = []
        for i, draft in enumerate(drafts[warmup:]):
            due = t0 + i / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            confirmed.append(confirm(draft))
        offered_s = time.time() - t0
        counts = wait_accepted([c.delivery_id for c in confirmed])
        rss_worker = round(sum(tree_peak_rss_mb(w.proc.pid) or 0 for w in workers) / max(len(workers), 1), 1)
    finally:
        env.stop_workers(workers)
    drained = drain_outcome(env, confirmed, counts, t0, processes * concurrency)
    c2a = drained.real["confirm_to_accepted"]
    return {
        "name": "peakhour",
        "notifications": n,
        "rate_target_per_second": rate,
        "rate_offered_per_second": round(n / offered_s, 2) if offered_s > 0 else None,
        "workers": {"processes": processes, "concurrency": concurrency},
        "real": drained.real,
        "peak_p95_ms": c2a["p95_ms"],
        "integrity": drained.check,
        "rss_mb_worker": rss_worker,
        "rss_mb_beat": beat_peak_rss_mb(env),
    }
