"""Failures outside any one view (oversized bodies, an unreachable database, errors Django
answers itself) and the headers every response carries."""
from __future__ import annotations

import logging
from typing import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_cache_control

from .http import error_response, json_path
from .formatting import file_size

log = logging.getLogger(__name__)


class RequestLimitsMiddleware:
    """Refuse a body larger than an upload may be before a byte of it is read.

    The limits (FORM_BODY_FACTOR, UPLOAD_BODY_ALLOWANCE) are settings, so the server's
    MAX_REQUEST_BODY_BYTES is checked against the same figures at start-up.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        api = json_path(request.path)
        factor = 1 if api else settings.FORM_BODY_FACTOR
        limit = settings.MAX_UPLOAD_BYTES * factor + settings.UPLOAD_BODY_ALLOWANCE
        if length > limit:
            message = f"The request is {file_size(length)}; uploads are limited to {file_size(settings.MAX_UPLOAD_BYTES)}."
            if api:
                return error_response(413, "request_too_large", message)
            return render(request, "error.html", {"title": "Upload too large", "message": message}, status=413)
        return self.get_response(request)


class PlainHttpAPIMiddleware:
    """With HTTPS_ONLY, an API call over plain http is refused in the API's shape, not redirected.

    SecurityMiddleware would answer 301 to https://: the token has already crossed in
    clear by then, and a client that follows the redirect hides the mistake (many re-send
    the POST as a GET). A 403 that says why makes it visible at the first call. Placed
    before SecurityMiddleware; pages keep their redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SECURE_SSL_REDIRECT and json_path(request.path) and not request.is_secure():
            return error_response(403, "https_required",
                                  "Use https://. This API does not answer over plain http; treat a token sent "
                                  "that way as exposed and replace it.")
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
        if json_path(request.path):
            response = error_response(503, "database_unavailable", message)
        else:
            response = HttpResponse(f"<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
                                    f"<p>{message}</p>", status=503)
        response["Retry-After"] = "5"
        return response


# What each status means when something outside our views produced it (Django's
# CSRF check, require_GET, an unknown Host, the body limits, the URL resolver).
ERROR_CODES = {
    400: ("bad_request", "The request is malformed."),
    403: ("forbidden", "The request was refused (missing or invalid CSRF token, or no permission)."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This endpoint does not accept that method."),
    408: ("request_timeout", "The request did not arrive in time."),
    411: ("length_required", "Send a Content-Length with the body."),
    413: ("request_too_large", "The request is too large."),
    415: ("unsupported_media_type", "The body is of a type this endpoint does not accept."),
    429: ("too_many_requests", "Too many requests; try again later."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
    503: ("unavailable", "The service is unavailable; try again shortly."),
}
# Headers an error keeps when its body is replaced: they tell the client what to do next.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ErrorShapeMiddleware:
    """Every error on an API path is `{"error": {...}}`, whoever produced it.

    Outermost, so it also sees what Django's own machinery answers before any view runs
    (HTML 400/403/405 pages) and turns it into the documented shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code < 400 or not json_path(request.path)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        code, message = ERROR_CODES.get(response.status_code, ("error", "The request failed."))
        shaped = error_response(response.status_code, code, message)
        for header in KEPT_HEADERS:
            if header in response:
                shaped[header] = response[header]
        return shaped


# Pages and API answers carry patient data: nothing may be cached, by the browser or any
# proxy. Static files (served by WhiteNoise before this runs) keep their long caching.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class PrivateResponseMiddleware:
    """A Content-Security-Policy on every response, and `Cache-Control: no-store` on all but static files."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if not request.path.startswith(settings.STATIC_URL):
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response
