from celery import shared_task
from django.conf import settings

from .services import notifications_purge


@shared_task(name="assist_portal.notifications.tasks.alert_overdue")
def alert_overdue() -> int:
    from .alerts import overdue_alerts_send

    return overdue_alerts_send()


@shared_task(name="assist_portal.notifications.tasks.purge_delivered")
def purge_delivered() -> int:
    return notifications_purge(settings.PATIENT_DATA_RETENTION_DAYS)
