"""Failures outside any one view: oversized bodies and an unreachable database."""
from __future__ import annotations

import logging
from typing import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .http import error_response, wants_json

log = logging.getLogger(__name__)

# Room for the multipart envelope and the other form fields around one image.
BODY_ALLOWANCE = 256 * 1024


class RequestLimitsMiddleware:
    """Refuse a body larger than an upload may be before a byte of it is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.MAX_UPLOAD_BYTES + BODY_ALLOWANCE
        if length > limit:
            message = f"The request is {length / 1e6:.1f} MB; uploads are limited to {settings.MAX_UPLOAD_BYTES / 1e6:.0f} MB."
            if wants_json(request):
                return error_response(413, "request_too_large", message)
            return render(request, "error.html", {"title": "Upload too large", "message": message}, status=413)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database that is down answers 503 with a reason, never a 500 or a hung worker."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except DatabaseError as exc:  # raised by middleware (sessions, auth) before any view
            return self._unavailable(request, exc)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DatabaseError):
            return self._unavailable(request, exception)
        return None

    def _unavailable(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        log.error("database unavailable for %s: %s", request.path, exc)
        message = "The database is unavailable; nothing was recorded. Try again shortly."
        if wants_json(request):
            response = error_response(503, "database_unavailable", message)
        else:
            response = HttpResponse(f"<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
                                    f"<p>{message}</p>", status=503)
        response["Retry-After"] = "5"
        return response
