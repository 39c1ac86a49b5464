from django.apps import AppConfig


class FormdefsConfig(AppConfig):
    name = "assist_portal.formdefs"
    label = "formdefs"
    verbose_name = "届出様式定義"
