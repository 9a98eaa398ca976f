"""Failures outside any one view (oversized bodies, an unreachable database, errors Django
answers itself) and the headers every response carries."""
from __future__ import annotations

import logging
from typing import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

from .errors import DatabaseUnavailable, HttpError
from .http import answer_error, error_response, json_path
from .formatting import file_size

log = logging.getLogger(__name__)


def body_limit(api: bool) -> int:
    """The largest body a request may declare: one upload on the API, FORM_BODY_FACTOR of them on a page."""
    return settings.MAX_UPLOAD_BYTES * (1 if api else settings.FORM_BODY_FACTOR) + settings.UPLOAD_BODY_ALLOWANCE


class RequestLimitsMiddleware:
    """Refuse a body larger than an upload may be before a byte of it is read.

    The limits (FORM_BODY_FACTOR, UPLOAD_BODY_ALLOWANCE) are settings, and the server's
    MAX_REQUEST_BODY_BYTES is checked against body_limit() at start-up (predictors/checks.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > body_limit(api=json_path(request.path)):
            message = f"The request is {file_size(length)}; uploads are limited to {file_size(settings.MAX_UPLOAD_BYTES)}."
            return answer_error(request, HttpError(message, status=413, code="request_too_large"), "Upload too large")
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
            return error_response(HttpError("Use https://. This API does not answer over plain http; treat a token "
                                            "sent that way as exposed and replace it.", status=403,
                                            code="https_required"))
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
        # The page is drawn without the request's user: reading it is what just failed.
        return answer_error(request, DatabaseUnavailable(), "Service unavailable", with_user=False)


# Headers an error keeps when its body is replaced: they tell the client what to do next.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ErrorShapeMiddleware:
    """Every error on an API path is `{"error": {...}}`, whoever produced it.

    Outermost, so it also sees what Django's own machinery answers before any view runs
    (HTML 400/403/405 pages) and turns it into the documented shape, with the code and
    message predictors.errors.STATUSES gives its status.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code < 400 or not json_path(request.path)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        kept = {header: response[header] for header in KEPT_HEADERS if header in response}
        return error_response(HttpError.of_status(response.status_code, kept))


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
