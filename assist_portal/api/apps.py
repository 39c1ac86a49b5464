from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "assist_portal.api"
    label = "api"
