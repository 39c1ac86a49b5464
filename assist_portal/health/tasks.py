"""The scheduler's heartbeat: beat sends this every HEARTBEAT_SECONDS to the `default` queue; the row it writes
shows that beat (which also runs the delivery sweeper) and a `default` worker are both alive."""
import os

from celery import shared_task

from . import services
from .models import Heartbeat

SCHEDULER = "celery-beat"


@shared_task(name="assist_portal.health.tasks.scheduler_heartbeat", ignore_result=True)
def scheduler_heartbeat() -> None:
    services.heartbeat_record(name=SCHEDULER, kind=Heartbeat.Kind.SCHEDULER, queues=["default"], pid=os.getpid())
