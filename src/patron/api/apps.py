from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "patron.api"
    label = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the deploy checks of the API's hardening."""
        from patron.api import checks  # noqa: F401  (registers on import)
