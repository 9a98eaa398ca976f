"""Liveness, readiness, status and metrics: what Render and operators poll."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .errors import HttpError
from .http import error_response, token_from_header

log = logging.getLogger(__name__)

# How long /ready/ waits for a model server's answer, per model it serves (two at most): a
# server that is down or stalled keeps the probe under a second.
MODEL_SERVER_PROBE_SECONDS = 0.4


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the worker answers. Touches no model and no database, imports nothing."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, every artifact is on disk and verified (none loaded), and
    the model server of each model served by one has it ready."""
    from .serving.registry import get_loader

    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        # The reason names the database host and port; it goes to the log, not to the public.
        log.error("readiness: database unavailable: %s", str(exc).strip() or type(exc).__name__)
        checks["database"] = "unavailable"
    for name, problem in get_loader().check_artifacts().items():
        checks[f"artifact:{name}"] = problem or "ok"
    for name, answer in get_loader().endpoint_readiness(MODEL_SERVER_PROBE_SECONDS).items():
        if answer != "ok":  # the reason names the server's address: the log's, not the public's
            log.error("readiness: the model server cannot serve %s: %s", name, answer)
        checks[f"model_server:{name}"] = "ok" if answer == "ok" else "unavailable"
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status=200 if ok else 503)


def _operator(request: HttpRequest) -> bool:
    token = token_from_header(request, "Bearer")
    if settings.METRICS_TOKEN and token is not None:
        import hmac

        # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a 500 for "Bearer café").
        return hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode())
    return request.user.is_authenticated and request.user.is_staff


def _not_an_operator() -> JsonResponse:
    return error_response(HttpError("Staff login or `Authorization: Bearer <METRICS_TOKEN>` required.", status=403,
                                    code="forbidden"))


@never_cache
@require_GET
def status(request: HttpRequest) -> JsonResponse:
    """Each model's state, version, memory and timings; loads nothing. Staff or METRICS_TOKEN."""
    from .serving.registry import get_loader

    if not _operator(request):
        return _not_an_operator()
    return JsonResponse(get_loader().status())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Staff or METRICS_TOKEN."""
    if not _operator(request):
        return _not_an_operator()
    from .serving.metrics import exposition

    return HttpResponse(exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
