from django.apps import AppConfig


class PredictorsConfig(AppConfig):
    name = "predictors"
    verbose_name = "Predictions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the settings-change receiver)
