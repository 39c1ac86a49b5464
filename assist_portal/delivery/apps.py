from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "assist_portal.delivery"
    label = "delivery"
    verbose_name = "HER-SYS送信"

    def ready(self) -> None:
        # Bind shared tasks to the project's Celery app in every process (web and workers).
        from assist_portal.celery import app  # noqa: F401
