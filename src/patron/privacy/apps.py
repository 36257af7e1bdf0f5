from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "patron.privacy"
    label = "privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Audit logins and role changes; keep consent state right across customer merges."""
        from django.db.models.signals import post_save

        from patron.customers.models import CustomerMerge
        from patron.privacy import audit, consent

        audit.connect_signals()
        post_save.connect(
            consent.refresh_after_merge,
            sender=CustomerMerge,
            dispatch_uid="privacy_consent_merge",
        )
