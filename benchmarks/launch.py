"""`launch`: connector push → launch URL (answered with the pre-filled form itself, no redirect), against a bare
Django view rendering a plain form with the same number of fields; and, apart, the signed-in GET of the form's own
URL (a re-open from the worklist or a reload) against the same baseline.

Both go through Django's test Client in this process (the full middleware stack, no network): the ratio is
what the product does per request beyond Django's own floor. Iterations alternate product flow and baseline
request so that drift (autovacuum, CPU frequency, a noisy neighbour) affects both alike.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any

from vocabulary import ids

from .stats import ratio, summary_ms
from .world import World, signed_in_client

_CONTROL = re.compile(r"<(?:input|select|textarea)\b[^>]*\bname=\"([^\"]+)\"", re.I)
_CANONICAL = re.compile(r'<link rel="canonical" href="(/[^"]+)">')
_NOT_FIELDS = {"csrfmiddlewaretoken", "action", "lock_version"}


def form_field_names(html: str) -> set[str]:
    """Names of the form controls a user fills in (a checkbox group counts once)."""
    return {name for name in _CONTROL.findall(html) if name not in _NOT_FIELDS}


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def run(world: World, *, iterations: int, warmup: int) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    hosts = [*settings.ALLOWED_HOSTS, "testserver"]
    with override_settings(ROOT_URLCONF="benchmarks.urls", ALLOWED_HOSTS=hosts):
        connectors = [Client(HTTP_AUTHORIZATION=f"Api-Key {site.api_key}") for site in world.sites]
        browsers = [signed_in_client(site.physician) for site in world.sites]
        bodies = {t.patient_id: t.bundle for t in world.templates}
        baseline = Client()
        fields: int | None = None

        queries = [0]  # SQL statements run so far (counted only in the untimed pass below)

        def count(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        def flow(i: int, marks: list[int] | None = None) -> tuple[float, float, float, str]:
            nonlocal fields
            k = i % len(world.sites)
            template = world.templates[i % len(world.templates)]
            body = json.dumps({"patient_id": world.next_patient_ref("L"), "format": "fhir",
                               "bundle": bodies[template.patient_id]}, ensure_ascii=False)
            t0 = time.perf_counter()
            pushed = connectors[k].post("/api/v1/extracts", data=body, content_type="application/json")
            t1 = time.perf_counter()
            if marks is not None:
                marks.append(queries[0])
            if pushed.status_code != 201:
                raise RuntimeError(f"push failed: {pushed.status_code} {pushed.content[:500]!r}")
            launched = browsers[k].get(_path(pushed.json()["launch_url"]))
            t2 = time.perf_counter()
            if marks is not None:
                marks.append(queries[0])
            if launched.status_code != 200:
                raise RuntimeError(f"launch failed: {launched.status_code} {launched.content[:500]!r}")
            opened = launched.content.decode()
            canonical = _CANONICAL.search(opened)
            if canonical is None:
                raise RuntimeError("the launch did not answer with a form page")
            page = browsers[k].get(canonical.group(1))  # the re-open of the same form (worklist, reload): not in the flow
            t3 = time.perf_counter()
            if marks is not None:
                marks.append(queries[0])
            if page.status_code != 200:
                raise RuntimeError(f"form failed: {page.status_code} {page.content[:500]!r}")
            html = page.content.decode()
            if fields is None:
                names = form_field_names(html)
                name = str(template.values.get(ids.PATIENT_NAME, ""))
                for shown in (opened, html):
                    if not names or form_field_names(shown) != names or (name and name not in shown):
                        raise RuntimeError("the launch or the form page is not the pre-filled form")
                fields = len(names)
            return t1 - t0, t2 - t1, t3 - t2, html

        def plain() -> float:
            t0 = time.perf_counter()
            response = baseline.get("/__bench__/plain-form/", {"fields": fields})
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise RuntimeError(f"baseline failed: {response.status_code}")
            return elapsed

        push_t, launch_t, form_t, flow_t, base_t = [], [], [], [], []
        page_bytes = 0
        for i in range(warmup + iterations):
            p, la, f, html = flow(i)
            b = plain()
            if i >= warmup:
                push_t.append(p)
                launch_t.append(la)
                form_t.append(f)
                flow_t.append(p + la)  # the EMR button's whole flow: push, then the launch that shows the form
                base_t.append(b)
                page_bytes = len(html.encode())

        # One more, untimed, to count SQL statements per step (a bottleneck pointer, not a figure of merit).
        marks: list[int] = []
        with connection.execute_wrapper(count):
            flow(warmup + iterations, marks)
            before = queries[0]
            plain()
            base_queries = queries[0] - before
        base_bytes = len(baseline.get("/__bench__/plain-form/", {"fields": fields}).content)

    push_s, launch_s, form_s = summary_ms(push_t), summary_ms(launch_t), summary_ms(form_t)
    flow_s, base_s = summary_ms(flow_t), summary_ms(base_t)
    return {
        "name": "launch",
        "iterations": iterations,
        "warmup": warmup,
        "form_fields": fields,
        "page_bytes": {"product": page_bytes, "baseline": base_bytes},
        "sql_queries": {"push": marks[0], "launch_form": marks[1] - marks[0],
                        "form_get": marks[2] - marks[1], "baseline": base_queries},
        "steps": {"push": push_s, "launch_form": launch_s, "form_get": form_s, "flow_total": flow_s},
        "baseline": base_s,
        "ratios": {
            "form_get_median": ratio(form_s["median_ms"], base_s["median_ms"]),
            "form_get_p95": ratio(form_s["p95_ms"], base_s["p95_ms"]),
            "flow_median": ratio(flow_s["median_ms"], base_s["median_ms"]),
            "flow_p95": ratio(flow_s["p95_ms"], base_s["p95_ms"]),
        },
    }
