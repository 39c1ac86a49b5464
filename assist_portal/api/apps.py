from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "assist_portal.api"
    label = "api"

    def ready(self):
        from . import schema  # noqa: F401  (registers the Api-Key security scheme with drf-spectacular)
