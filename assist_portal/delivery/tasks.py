"""Celery is just another interface to the core: tasks take IDs and call services."""
from celery import shared_task

from . import services


@shared_task(name="assist_portal.delivery.tasks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str | None:
    row = services.delivery_attempt(delivery_id)
    return row.status if row is not None else None


@shared_task(name="assist_portal.delivery.tasks.sweep_deliveries")
def sweep_deliveries() -> int:
    return services.delivery_sweep()
