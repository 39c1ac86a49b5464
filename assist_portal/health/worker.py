"""Worker heartbeat: a Celery consumer bootstep that writes the worker's Heartbeat row every HEARTBEAT_SECONDS.

It runs on the consumer's timer, i.e. inside the worker's event loop: a worker whose loop is stuck, or whose
consumer is reconnecting to the broker, stops beating. The database write itself happens on one helper thread so a
slow database never blocks message handling (a beat is skipped while the previous write is still running). Errors
are logged and never stop the worker. A clean shutdown deletes the row.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor

from celery import bootsteps
from django.utils import timezone

log = logging.getLogger(__name__)


class HeartbeatStep(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)
    label = "HER-SYS heartbeat"

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.tref = None
        self.executor: ThreadPoolExecutor | None = None
        self.pending: Future | None = None
        self.started_at = timezone.now()
        self.name = ""
        self.queues: list[str] = []

    def start(self, c):
        from django.conf import settings

        self.name = c.hostname
        self.queues = sorted(q.name for q in c.task_consumer.queues) if c.task_consumer else []
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
        self.beat()
        self.tref = c.timer.call_repeatedly(settings.HEARTBEAT_SECONDS, self.beat)

    def beat(self):
        if self.pending is not None and not self.pending.done():
            return
        self.pending = self.executor.submit(self._write)

    def _write(self):
        from django.db import connection

        from .models import Heartbeat
        from .services import heartbeat_record

        try:
            heartbeat_record(name=self.name, kind=Heartbeat.Kind.WORKER, queues=self.queues, pid=os.getpid(),
                             started_at=self.started_at)
        except Exception:
            log.warning("could not record the heartbeat of %s", self.name, exc_info=True)
        finally:
            connection.close()  # this thread's own connection (the tasks' threads have theirs)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, c):
        self.stop(c)
        if self.executor is None:
            return
        self.executor.submit(self._forget)
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.executor = None

    def _forget(self):
        from django.db import connection

        from .services import heartbeat_forget

        try:
            heartbeat_forget(name=self.name)
        except Exception:
            log.warning("could not remove the heartbeat of %s", self.name, exc_info=True)
        finally:
            connection.close()


def install(app) -> None:
    app.steps["consumer"].add(HeartbeatStep)
