from django.apps import AppConfig


class CentralConfig(AppConfig):
    """The vendor's central administration under /central/: definitions, operations, tenants and users, audit
    export. Views only: the writes live in the services of the apps that own the data."""

    name = "assist_portal.central"
    label = "central"
    verbose_name = "中央管理"
