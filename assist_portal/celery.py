"""Celery application. Tasks are thin: they pass IDs and call services (no patient data in task arguments)."""
import os

from celery import Celery

from . import broker
from .health.worker import install as install_heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assist_portal.settings")

# Busy workers must survive a Redis restart (kombu/celery bug worked around in assist_portal/broker.py).
broker.patch_kombu_redis()

app = Celery("assist_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_heartbeat(app)  # every worker writes its heartbeat row (read by /readyz)
