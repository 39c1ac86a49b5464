from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "assist_portal.health"
    label = "health"
    verbose_name = "稼働状況"
