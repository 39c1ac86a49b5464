from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "assist_portal.notifications"
    label = "notifications"
    verbose_name = "発生届"

    def ready(self) -> None:
        # The outbox announces problems without knowing who listens (delivery imports nothing of notifications).
        from assist_portal.delivery.signals import delivery_problem

        from .alerts import on_delivery_problem

        delivery_problem.connect(on_delivery_problem, dispatch_uid="notifications.delivery_problem")
