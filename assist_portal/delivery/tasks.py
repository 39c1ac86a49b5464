"""Celery is just another interface to the core: tasks take IDs and call services."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services


# Database trouble inside a task: retry the task itself (the sweeper is the second net).
@shared_task(name="assist_portal.delivery.tasks.deliver", acks_late=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, retry_backoff_max=60,
             retry_kwargs={"max_retries": 20})
def deliver(delivery_id: int) -> str | None:
    row = services.delivery_attempt(delivery_id)
    return row.status if row is not None else None


@shared_task(name="assist_portal.delivery.tasks.sweep_deliveries")
def sweep_deliveries() -> int:
    return services.delivery_sweep()


@shared_task(name="assist_portal.delivery.tasks.check_delivery", acks_late=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, retry_kwargs={"max_retries": 5})
def check_delivery(delivery_id: int) -> str | None:
    row = services.delivery_check(delivery_id)
    return row.status if row is not None else None
