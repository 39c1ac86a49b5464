from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "assist_portal.audit"
    label = "audit"
    verbose_name = "監査ログ"
