from django.apps import AppConfig


class HospitalAdminConfig(AppConfig):
    """The hospital administrator's pages (/hospital/): the hospital's own staff accounts, its settings and
    connector keys. Never patient values."""

    name = "assist_portal.hospitaladmin"
    label = "hospitaladmin"
    verbose_name = "医療機関の管理"
