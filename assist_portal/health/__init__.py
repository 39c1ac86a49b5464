"""Liveness (/healthz) and readiness (/readyz) of the whole product, and the heartbeats readiness is built on.

Workers write a heartbeat row every ``HEARTBEAT_SECONDS`` from their consumer's event loop (``worker.py``, a Celery
consumer bootstep), and beat schedules a tiny task on the ``default`` queue that writes the scheduler's row
(``tasks.py``). ``/readyz`` reads those rows, pings the broker and looks at the oldest pending delivery
(``selectors.py``). Imports from other apps: the ``Delivery`` model, read-only, nothing else.
"""
