from django.apps import AppConfig
from django.core import checks


class CustomersConfig(AppConfig):
    name = "patron.customers"
    label = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Customers hold the encrypted personal data: no start without a usable key list.
        from patron.privacy.pii.checks import check_pii_keys

        checks.register(check_pii_keys)
