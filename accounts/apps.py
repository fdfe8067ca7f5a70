from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and money"

    def ready(self) -> None:
        # Connects the audit receivers for login, logout and MFA events.
        from accounts import receivers  # noqa: F401
