from django.apps import AppConfig


class FormsConfig(AppConfig):
    name = "assist_portal.forms"
    label = "formdefs"
    verbose_name = "届出様式定義"
