"""The site's errors (predictors.errors) answered by Django, and how a request proves who it is."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.template.loader import render_to_string

from .errors import HttpError
from .models import APIToken


def json_path(path: str) -> bool:
    """Paths whose every answer, errors included, is JSON in the API's error shape."""
    return path.startswith("/api/") or path in ("/metrics", "/status/")


def error_response(error: HttpError) -> JsonResponse:
    """An error on a JSON path: `{"error": {"code", "message", "fields"}}`, its status and its headers."""
    return with_error_headers(JsonResponse(error.body(), status=error.status), error)


def error_page(request: HttpRequest, error: HttpError, title: str, message: str | None = None, *,
               with_user: bool = True) -> HttpResponse:
    """An error on a page: the site's error page, with the error's status and headers.

    `with_user=False` draws it without the request's context, whose user is a database
    read: for when the database is what failed.
    """
    context = {"title": title, "message": error.message if message is None else message}
    if with_user:
        response = render(request, "error.html", context, status=error.status)
    else:
        response = HttpResponse(render_to_string("error.html", context), status=error.status)
    return with_error_headers(response, error)


def answer_error(request: HttpRequest, error: HttpError, title: str, message: str | None = None, *,
                 with_user: bool = True) -> HttpResponse:
    """The error in the API's shape on a JSON path, else as the page (`message`, if given, is the page's)."""
    if json_path(request.path):
        return error_response(error)
    return error_page(request, error, title, message, with_user=with_user)


def with_error_headers(response: HttpResponse, error: HttpError) -> HttpResponse:
    """The response, carrying the headers that tell the client what to do next (Retry-After, Allow...)."""
    for name, value in error.headers.items():
        response[name] = value
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404."""
    return answer_error(request, HttpError.of_status(404), "Not found", "There is no page at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500."""
    return answer_error(request, HttpError.of_status(500), "Server error")


def token_from_header(request: HttpRequest, scheme: str) -> str | None:
    """The credentials after `scheme` in Authorization; schemes are case-insensitive (RFC 9110)."""
    given, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if given.lower() != scheme.lower():
        return None
    return credentials.strip() or None


# The challenge a 401 carries (RFC 9110 11.6.1): the scheme the OpenAPI document declares.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="HealthOracle API"'}


def api_user(request: HttpRequest) -> Any:
    """Token auth, else the session with its CSRF check; HttpError (401, 403) for neither.

    `Authorization: Bearer <key>` is what the OpenAPI document declares and generated
    clients send; `Token <key>`, the form this API first documented, works too.
    """
    key = token_from_header(request, "Bearer") or token_from_header(request, "Token")
    if key is not None:
        user = APIToken.user_for_key(key)
        if user is None:
            raise HttpError("The API token is not valid.", status=401, code="invalid_token", headers=CHALLENGE)
        return user
    if request.user.is_authenticated:
        # A session is a cookie the browser sends by itself: require the CSRF token,
        # as the HTML forms do, or any site could post predictions as the clinician.
        refusal = _CSRF.process_view(request, None, (), {})
        if refusal is not None:
            raise HttpError("Session requests need a CSRF token.", status=403, code="csrf_failed")
        return request.user
    raise HttpError.of_status(401, headers=CHALLENGE)


_CSRF = CsrfViewMiddleware(lambda request: None)
