"""Celery application. Tasks are thin: they pass IDs and call services (no patient data in task arguments)."""
import os

from celery import Celery, signals

from . import broker
from .health.worker import install as install_heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assist_portal.settings")

# Busy workers must survive a Redis restart (kombu/celery bug worked around in assist_portal/broker.py).
broker.patch_kombu_redis()

app = Celery("assist_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_heartbeat(app)  # every worker writes its heartbeat row (read by /readyz)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _db_connections_like_a_request(task=None, **kwargs):
    """With CELERY_DB_REUSE_MAX set, Celery keeps DB connections across tasks; treat each task like a web request:
    a connection that saw an error or outlived CONN_MAX_AGE is closed (the next query opens a fresh one)."""
    from django.db import close_old_connections, connection

    if getattr(getattr(task, "request", None), "is_eager", False) or connection.in_atomic_block:
        return  # run inline (tests, eager mode): the caller's connection and transaction are not ours
    close_old_connections()
