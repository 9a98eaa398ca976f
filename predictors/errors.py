"""Every error the site answers: its status, its stable code, and the one JSON shape it takes.

An error is an HttpError carrying its status, code, message, the fields at fault and the
headers that tell a client what to do next (Retry-After, Allow, WWW-Authenticate). The
JSON paths answer it as `{"error": {"code", "message", "fields"}}`; pages draw it as the
site's error page (predictors.http does both for Django); the server's bridge answers its
own refusals from it before Django runs (predictors/server/bridge.py). STATUSES is every
status the site answers with and what it means there: the OpenAPI document lists the API's
from it, and an error Django raises itself (its CSRF check, require_GET, an unknown Host)
gets the code and message written here.

Plain Python: the bridge and model serving import it, and neither may import Django.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Status:
    code: str  # the code of this status when no code of ours named the error (Django's own refusals)
    message: str  # and its message
    meaning: str  # every way the site comes to answer it, as the OpenAPI document says
    api: bool = True  # False: only pages answer it, so the API's document leaves it out


STATUSES: dict[int, Status] = {
    400: Status("bad_request", "The request is malformed.",
                "Malformed request: bad JSON, unknown, missing or wrongly typed fields, no image, an unreadable "
                "multipart body, or a Host the site does not serve"),
    401: Status("not_authenticated", "Send `Authorization: Bearer <key>` (make a key at /tokens/) or log in.",
                "No or invalid credentials (with a WWW-Authenticate challenge)"),
    403: Status("forbidden", "The request was refused (missing or invalid CSRF token, or no permission).",
                "Session request without a CSRF token, or a call over plain http where the site is HTTPS-only"),
    404: Status("not_found", "No such endpoint.", "No such endpoint (a model the site does not serve)"),
    405: Status("method_not_allowed", "This endpoint does not accept that method.",
                "Method other than POST (with an Allow header)"),
    408: Status("request_timeout", "The request did not arrive in time.",
                "The request did not arrive within REQUEST_READ_TIMEOUT"),
    413: Status("request_too_large", "The request is too large.",
                "Body, file, pixel count or decoded size over the limit"),
    415: Status("unsupported_media_type", "The body is of a type this endpoint does not accept.",
                "Not JSON / not multipart, or a file that is not a supported image"),
    422: Status("unprocessable", "The request is well-formed but cannot be answered.",
                "Well-formed but out of range; an image of the wrong kind (not a fundus photo / not an ECG), one too "
                "poor to read (`ungradable`), or one outside what the model was validated on (`outside_domain`)"),
    429: Status("too_many_requests", "Too many requests; try again later.",
                "Too many failed log-ins for an account or from an address: the log-in pages refuse them for "
                "LOGIN_LOCKOUT_MINUTES (with Retry-After). The API takes tokens, not passwords, and never sends it",
                api=False),
    500: Status("server_error", "Something went wrong on our side; it has been logged.",
                "An unexpected failure, logged; nothing was recorded"),
    503: Status("unavailable", "The service is unavailable; try again shortly.",
                "The site is busy with other images, a model or the database is unavailable (with Retry-After)"),
}
# The code and message of a status missing from the table (none the site sends itself).
UNLISTED = Status("error", "The request failed.", "")


class HttpError(Exception):
    """An error answered with its status: subclasses fix theirs (`class X(HttpError, status=503,
    code="..."):`), a one-off names it (`HttpError("...", status=415, code="...")`)."""

    status: int = 500
    code: str = STATUSES[500].code

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fields: Mapping[str, list[str]] | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    @classmethod
    def of_status(cls, status: int, headers: Mapping[str, str] | None = None) -> "HttpError":
        """An error of this status that says no more than the table does."""
        known = STATUSES.get(status, UNLISTED)
        return cls(known.message, status=status, code=known.code, headers=headers)

    def body(self) -> dict[str, Any]:
        """The one JSON shape of every error on a JSON path, whatever its status."""
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}

    def json(self) -> bytes:
        return json.dumps(self.body()).encode()


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header for a pause of `seconds`: whole seconds (RFC 9110 10.2.3), at least one."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class SiteBusy(HttpError, status=503, code="busy"):
    """No image slot came free within IMAGE_QUEUE_SECONDS (predictors/server/admission.py)."""

    def __init__(self, retry_seconds: int):
        super().__init__(f"The site is busy with other images; try again in {retry_seconds} seconds. "
                         "Nothing was recorded.", headers=retry_after(retry_seconds))


# The database is asked again on the next request; a client waits this long before sending it.
DATABASE_RETRY_SECONDS = 5


class DatabaseUnavailable(HttpError, status=503, code="database_unavailable"):
    def __init__(self) -> None:
        super().__init__("The database is unavailable; nothing was recorded. Try again shortly.",
                         headers=retry_after(DATABASE_RETRY_SECONDS))
