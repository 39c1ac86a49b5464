from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "assist_portal.accounts"
    label = "accounts"
    verbose_name = "医療機関と利用者"
