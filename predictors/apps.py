from django.apps import AppConfig


class PredictorsConfig(AppConfig):
    name = "predictors"
    verbose_name = "Predictions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers the settings checks, connects the receivers)
