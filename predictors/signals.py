"""Rebuild the registry when a test or an operator changes its settings; confirm a log-out."""
from django.contrib import messages
from django.contrib.auth.signals import user_logged_out
from django.core.signals import setting_changed
from django.dispatch import receiver

MODEL_SETTINGS = {"MODEL_ARTIFACTS_DIR", "MODEL_MEMORY_BUDGET_MB", "MODEL_RETRY_SECONDS", "ORT_INTRA_OP_THREADS",
                  "ORT_GRAPH_OPTIMIZATION", "MODEL_RUNTIME_OVERRIDES", "INFERENCE_URL", "INFERENCE_MODELS",
                  "INFERENCE_TIMEOUT", "INFERENCE_TOKEN"}


@receiver(setting_changed)
def rebuild_registry(setting: str, **kwargs) -> None:
    if setting in MODEL_SETTINGS:
        from .serving.registry import reset_loader

        reset_loader()


@receiver(user_logged_out)
def confirm_log_out(sender, request, user, **kwargs) -> None:
    """The log-in page a log-out lands on says it happened (the session, with its messages, is new)."""
    if request is not None:
        messages.success(request, "You have logged out.")
