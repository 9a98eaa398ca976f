"""The API's one error shape, and how a request proves who it is."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

from .models import APIToken


def error_response(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    """`{"error": {"code", "message", "fields"}}`: every API error, every status."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


def json_path(path: str) -> bool:
    """Paths whose every answer, errors included, is JSON in the shape above."""
    return path.startswith("/api/") or path in ("/metrics", "/status/")


def token_from_header(request: HttpRequest, scheme: str) -> str | None:
    """The credentials after `scheme` in Authorization; schemes are case-insensitive (RFC 9110)."""
    given, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if given.lower() != scheme.lower():
        return None
    return credentials.strip() or None


# The challenge a 401 carries (RFC 9110 11.6.1): the scheme the OpenAPI document declares.
CHALLENGE = 'Bearer realm="HealthOracle API"'


def api_user(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    """Token auth, else the session with its CSRF check.

    `Authorization: Bearer <key>` is what the OpenAPI document declares and generated
    clients send; `Token <key>`, the form this API first documented, works too.
    """
    key = token_from_header(request, "Bearer") or token_from_header(request, "Token")
    if key is not None:
        user = APIToken.user_for_key(key)
        if user is None:
            return None, _unauthorized("invalid_token", "The API token is not valid.")
        return user, None
    if request.user.is_authenticated:
        # A session is a cookie the browser sends by itself: require the CSRF token,
        # as the HTML forms do, or any site could post predictions as the clinician.
        refusal = _CSRF.process_view(request, None, (), {})
        if refusal is not None:
            return None, error_response(403, "csrf_failed", "Session requests need a CSRF token.")
        return request.user, None
    return None, _unauthorized("not_authenticated", "Send `Authorization: Bearer <key>` (make a key at /tokens/) "
                                                    "or log in.")


def _unauthorized(code: str, message: str) -> JsonResponse:
    response = error_response(401, code, message)
    response["WWW-Authenticate"] = CHALLENGE
    return response


_CSRF = CsrfViewMiddleware(lambda request: None)
