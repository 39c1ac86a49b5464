"""Shared by `delivery` and `peak`: drafts to confirm, confirming through the service, waiting for the outbox to
drain, reading the timings back from the Delivery/Attempt log, the direct-to-sandbox baseline and the
zero-lost / zero-duplicated check against what the sandbox stored.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from .stats import summary_ms
from .world import Site, Template, World, confirm_values, draft_create


@dataclass
class Draft:
    site: Site
    template: Template
    notification: Any


@dataclass
class Confirmed:
    site: Site
    notification_uuid: str
    delivery_id: int
    started: float  # wall clock (time.time()) when the confirm call began
    took: float  # seconds the confirm call took


def drafts_prepare(world: World, n: int, prefix: str, weights: list[float] | None = None) -> list[Draft]:
    """n pre-filled drafts spread over the hospitals (evenly, or by `weights`), templates in rotation."""
    sites = world.sites
    if weights is None:
        owners = [sites[i % len(sites)] for i in range(n)]
    else:
        owners = allot(sites, weights, n)
    out = []
    for i, site in enumerate(owners):
        template = world.templates[i % len(world.templates)]
        out.append(Draft(site, template, draft_create(world, site, template, world.next_patient_ref(prefix))))
    return out


def allot(items: list, weights: list[float], n: int) -> list:
    """n slots shared out by weight (largest remainder), interleaved so every owner appears early."""
    total = sum(weights)
    exact = [w * n / total for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(items)), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    out, left = [], list(counts)
    while len(out) < n:
        for i, item in enumerate(items):
            if left[i]:
                out.append(item)
                left[i] -= 1
    return out


def confirm(draft: Draft) -> Confirmed:
    """The physician's confirmation through the service: revision + outbox row, task enqueued on commit."""
    from assist_portal.notifications.services import notification_confirm

    n = draft.notification
    started, t0 = time.time(), time.perf_counter()
    row, evaluation, delivery = notification_confirm(n, draft.site.physician, confirm_values(n, draft.template),
                                                     n.lock_version)
    took = time.perf_counter() - t0
    if delivery is None:
        problems = [m.text_ja for m in evaluation.errors][:5]
        raise RuntimeError(f"confirm refused for a synthetic notification: {problems}")
    return Confirmed(draft.site, str(row.uuid), delivery.pk, started, took)


def confirm_concurrently(drafts: list[Draft], threads: int) -> list[Confirmed]:
    """Confirm with `threads` threads (each its own DB connection), as several physicians at once."""
    if threads <= 1:
        return [confirm(d) for d in drafts]
    from django.db import connection

    todo: queue.Queue[Draft] = queue.Queue()
    for d in drafts:
        todo.put(d)
    done: list[Confirmed] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            while not errors:
                try:
                    d = todo.get_nowait()
                except queue.Empty:
                    return
                c = confirm(d)
                with lock:
                    done.append(c)
        except BaseException as exc:  # surfaced in the caller
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return done


def wait_accepted(delivery_ids: list[int], *, stall_timeout: float = 60.0, poll: float = 0.25) -> dict[str, int]:
    """Until every delivery is final (or nothing moved for `stall_timeout` s). Returns the status counts.

    Polls by id range, not with an IN list of thousands of ids: the poll itself must cost PostgreSQL little."""
    from django.db.models import Count

    from assist_portal.delivery.models import Delivery

    if not delivery_ids:
        return {}
    rows = Delivery.objects.filter(pk__gte=min(delivery_ids), pk__lte=max(delivery_ids))
    if rows.count() != len(set(delivery_ids)):  # another writer in the range: fall back to the exact set
        rows = Delivery.objects.filter(pk__in=delivery_ids)
    last_final, last_change = -1, time.monotonic()
    while True:
        counts = dict(rows.values_list("status").annotate(c=Count("id")).order_by())
        final = counts.get("accepted", 0) + counts.get("rejected", 0) + counts.get("dead", 0)
        if final == len(delivery_ids):
            return counts
        if final != last_final:
            last_final, last_change = final, time.monotonic()
        elif time.monotonic() - last_change > stall_timeout:
            return counts
        time.sleep(poll)


def delivery_timings(delivery_ids: list[int]) -> list[dict[str, float]]:
    """Per delivery, from the outbox log (wall-clock seconds): confirmed, first attempt started, accepted."""
    from django.db.models import Count, Min

    from assist_portal.delivery.models import Delivery

    rows = (Delivery.objects.filter(pk__in=delivery_ids)
            .annotate(first_try=Min("attempt_log__started_at"), tries=Count("attempt_log"))
            .values("pk", "status", "hospital_id", "updated_at", "created_at", "first_try", "tries"))
    out = []
    for r in rows:
        out.append({
            "id": r["pk"], "status": r["status"], "hospital_id": r["hospital_id"], "tries": r["tries"],
            "confirmed": r["created_at"].timestamp(),  # written in the confirming transaction
            "first_try": r["first_try"].timestamp() if r["first_try"] else float("nan"),
            "accepted": r["updated_at"].timestamp() if r["status"] == "accepted" else float("nan"),
        })
    return out


def latency_summary(timings: list[dict[str, float]]) -> dict[str, Any]:
    accepted = [t for t in timings if t["status"] == "accepted"]
    return {
        "confirm_to_accepted": summary_ms([t["accepted"] - t["confirmed"] for t in accepted]),
        "confirm_to_first_try": summary_ms([t["first_try"] - t["confirmed"] for t in accepted]),
        "first_try_to_accepted": summary_ms([t["accepted"] - t["first_try"] for t in accepted]),
    }


def max_backlog(timings: list[dict[str, float]]) -> int:
    """The most confirmed-but-not-yet-accepted notifications at any moment."""
    events = sorted([(t["confirmed"], 1) for t in timings] + [(t["accepted"], -1) for t in timings
                                                              if t["status"] == "accepted"])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def saturated_rate(timings: list[dict[str, float]], slots: int) -> tuple[float, float]:
    """(accepted per second, seconds) over the time when at least `slots` notifications were outstanding, i.e.
    every worker pool slot had work: the drain capacity, independent of how fast notifications arrived."""
    events = sorted([(t["confirmed"], 1) for t in timings] + [(t["accepted"], -1) for t in timings
                                                              if t["status"] == "accepted"])
    level, busy, done, prev = 0, 0.0, 0, None
    for when, step in events:
        if prev is not None and level >= slots:
            busy += when - prev
            done += step == -1
        level += step
        prev = when
    return (done / busy if busy > 0 else float("nan")), busy


def bundles_for(delivery_ids: list[int]) -> list[tuple[bytes, str]]:
    """The exact bytes the workers sent (each delivery's frozen payload), with their idempotency keys."""
    from assist_portal.delivery.models import Delivery

    rows = Delivery.objects.filter(pk__in=delivery_ids).order_by("pk").select_related("payload")
    return [(d.payload.content, d.idempotency_key) for d in rows]


def direct_baseline(env, bundles: list[tuple[bytes, str]], warmup: int) -> dict[str, Any]:
    """Post the same bytes straight to a freshly reset sandbox with one HersysClient from one process."""
    from hersys_client import HersysClient  # noqa: F401 - the client under test

    env.sandbox_reset()
    client = env.sandbox.client_factory(timeout=30.0)
    try:
        for body, key in bundles[:warmup]:  # token, TLS session, connection pool
            client.submit_bytes(body, key)
        latencies = []
        t0 = time.perf_counter()
        for body, key in bundles[warmup:]:
            s = time.perf_counter()
            client.submit_bytes(body, key)
            latencies.append(time.perf_counter() - s)
        elapsed = time.perf_counter() - t0
    finally:
        client.close()
    n = len(bundles) - warmup
    return {"notifications": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 2),
            "post": summary_ms(latencies)}


def failure_reasons(delivery_ids: list[int], limit: int = 3) -> list[str]:
    """A few distinct `last_error`s of deliveries that did not end accepted (to diagnose a broken run)."""
    from assist_portal.delivery.models import Delivery

    errors = (Delivery.objects.filter(pk__in=delivery_ids).exclude(status="accepted")
              .values_list("status", "last_error").distinct()[:limit])
    return [f"{status}: {error[:300]}" for status, error in errors]


def sandbox_check(sandbox, expected_uuids: set[str]) -> dict[str, int]:
    """Compare what the sandbox stored with what was confirmed: zero lost, zero duplicated."""
    received = sandbox.received(include_bundles=False)
    stored = {n["bundle_identifier"]: n for n in received["notifications"]}
    lost = len(expected_uuids - set(stored))
    duplicated = sum(1 for u in expected_uuids & set(stored)
                     if len(stored[u]["revisions"]) != 1 or stored[u]["revision"] != 1)
    unexpected = len(set(stored) - expected_uuids)
    return {"confirmed": len(expected_uuids), "received": len(expected_uuids & set(stored)), "lost": lost,
            "duplicated": duplicated, "unexpected": unexpected, "idempotency_keys": received["idempotency_keys"]}


def integrity_total(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The integrity checks of several drained runs as one (counts added up, failures listed once)."""
    total: dict[str, Any] = {"status_counts": {}, "failures": []}
    for check in checks:
        for key, value in check.items():
            if key == "status_counts":
                for status, count in value.items():
                    total["status_counts"][status] = total["status_counts"].get(status, 0) + count
            elif key == "failures":
                total["failures"] += [f for f in value if f not in total["failures"]]
            elif isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return total


@dataclass
class Drained:
    """What one drained run yields, computed the same way for every benchmark."""

    timings: list[dict[str, float]]
    accepted: list[dict[str, float]]
    rate: float
    last: float
    check: dict[str, Any]
    real: dict[str, Any]
    saturated: tuple[float, float]


def drain_outcome(env, confirmed: list[Confirmed], counts: dict[str, int], t0: float, slots: int) -> Drained:
    """Throughput, latency and integrity (lost / duplicated) of a drained run."""
    ids = [c.delivery_id for c in confirmed]
    timings = delivery_timings(ids)
    accepted = [t for t in timings if t["status"] == "accepted"]
    last = max((t["accepted"] for t in accepted), default=t0)
    rate = len(accepted) / (last - t0) if accepted else 0.0
    saturated = saturated_rate(timings, slots)
    check = sandbox_check(env.sandbox, {c.notification_uuid for c in confirmed})
    check["extra_attempts"] = sum(t["tries"] - 1 for t in timings)
    check["status_counts"] = counts
    check["failures"] = failure_reasons(ids) if counts.get("accepted", 0) != len(ids) else []
    real = {
        "per_second": round(rate, 2),
        "seconds": round(last - t0, 3),
        **latency_summary(timings),
        "max_backlog": max_backlog(timings),
        # None when every worker slot was never busy at once (nan is not JSON)
        "saturated_per_second": round(saturated[0], 2) if saturated[0] == saturated[0] else None,
        "saturated_seconds": round(saturated[1], 3),
    }
    return Drained(timings, accepted, rate, last, check, real, saturated)
