from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "assist_portal.delivery"
    label = "delivery"
    verbose_name = "HER-SYS送信"
