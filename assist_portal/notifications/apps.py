from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "assist_portal.notifications"
    label = "notifications"
    verbose_name = "発生届"
