"""System checks of the settings the environment gave (HealthOracle/environment.py).

A value that does not parse, or does not fit the others, is an error naming its variable:
`manage.py check` lists them, every other command stops on them before it runs, and a
worker stops on them before it serves (predictors/server/startup.py), as one line each,
never a traceback from deep inside settings.py.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .catalogue import IMAGE

# The tag of these checks: what a starting worker runs (startup.py), not Django's whole suite.
TAG = "environment"


@register(TAG)
def environment_parses(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Each variable whose value did not parse; its default stood in."""
    return [Error(problem, id="predictors.E001") for problem in settings.ENVIRONMENT_PROBLEMS]


@register(TAG)
def server_reads_what_forms_send(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Below a page form's limit the server would answer a bare 413 where the form keeps what was typed."""
    from .middleware import body_limit

    form_limit = body_limit(api=False)
    if settings.MAX_REQUEST_BODY_BYTES >= form_limit:
        return []
    return [Error(f"MAX_REQUEST_BODY_BYTES={settings.MAX_REQUEST_BODY_BYTES} is below the {form_limit} bytes a page's "
                  f"form may send ({settings.FORM_BODY_FACTOR} × MAX_UPLOAD_BYTES + {settings.UPLOAD_BODY_ALLOWANCE}); "
                  "raise it, or lower MAX_UPLOAD_BYTES.", id="predictors.E002")]


@register(TAG)
def model_server_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A model server (INFERENCE_URL) is reached over http(s), waited for a while, and serves image models only."""
    if not settings.INFERENCE_URL:
        return []
    errors = []
    if not settings.INFERENCE_URL.startswith(("http://", "https://")):
        errors.append(Error(f"INFERENCE_URL={settings.INFERENCE_URL!r} is not an http:// or https:// URL.",
                            id="predictors.E003"))
    if not settings.INFERENCE_TIMEOUT > 0:
        errors.append(Error(f"INFERENCE_TIMEOUT={settings.INFERENCE_TIMEOUT} must be a positive number of seconds.",
                            id="predictors.E004"))
    if unknown := sorted(set(settings.INFERENCE_MODELS) - set(IMAGE)):
        errors.append(Error(f"INFERENCE_MODELS names {', '.join(unknown)}: only the image models ({', '.join(IMAGE)}) "
                            "can be served by a model server.", id="predictors.E005"))
    return errors
