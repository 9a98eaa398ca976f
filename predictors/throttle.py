"""Login throttling (django-axes): who a client is, and what a locked-out client sees.

Every wrong password costs about half a second of CPU (password hashing) on a
fractional-CPU instance, so failures are counted per account and per client address,
and a locked-out attempt is refused before any hashing happens.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies (Render: 1)
    the entry the nearest trusted proxy appended to X-Forwarded-For, which no client can forge."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return (f"Too many failed log-ins for this account or from this address. "
            f"Try again in {minutes} minutes, or ask an administrator to unlock it.")


def lockout(request: HttpRequest, original_response: HttpResponse | None = None,
            credentials: dict[str, Any] | None = None) -> HttpResponse:
    """The log-in page (site or admin) again, with the reason, as 429 Too Many Requests."""
    form = AuthenticationForm(request)  # unbound: validating it would check the password again
    form.errors[NON_FIELD_ERRORS] = form.error_class([lockout_message()], error_class="nonfield")
    response = render(request, "registration/login.html",
                      {"form": form, "next": request.POST.get("next", "") if request.method == "POST" else ""},
                      status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
