from django.apps import AppConfig


class RecommendConfig(AppConfig):
    name = "patron.recommend"
    label = "recommend"
    default_auto_field = "django.db.models.BigAutoField"
