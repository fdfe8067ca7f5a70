from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from trading.dbsession import configure_new_connection

        connection_created.connect(configure_new_connection, dispatch_uid="trading-loop-session")
