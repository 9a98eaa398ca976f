"""Liveness, readiness, status and metrics: what Render and operators poll."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .http import error_response, token_from_header

log = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the worker answers. Touches no model and no database, imports nothing."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers and every artifact is on disk and verified (none loaded)."""
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
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status=200 if ok else 503)


def _operator(request: HttpRequest) -> bool:
    token = token_from_header(request, "Bearer")
    if settings.METRICS_TOKEN and token is not None:
        import hmac

        # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a 500 for "Bearer café").
        return hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode())
    return request.user.is_authenticated and request.user.is_staff


@never_cache
@require_GET
def status(request: HttpRequest) -> JsonResponse:
    """Each model's state, version, memory and timings; loads nothing. Staff or METRICS_TOKEN."""
    from .serving.registry import get_loader

    if not _operator(request):
        return error_response(403, "forbidden", "Staff login or `Authorization: Bearer <METRICS_TOKEN>` required.")
    return JsonResponse(get_loader().status())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Staff or METRICS_TOKEN."""
    if not _operator(request):
        return error_response(403, "forbidden", "Staff login or `Authorization: Bearer <METRICS_TOKEN>` required.")
    from .serving.metrics import exposition

    return HttpResponse(exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
