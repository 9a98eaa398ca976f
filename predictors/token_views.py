"""The clinician's own API tokens page: create and name one, see its key once, revoke any.

Render's free plan has no shell for `manage.py apitoken`, and a clinician should not need
an operator to script against the API.
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import tokens
from .models import APIToken

NAME_MAX_LENGTH = APIToken._meta.get_field("name").max_length


class TokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, label="What the token is for",
                           help_text="For example the script or device that will use it.",
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the tokens; POST creates one and shows its key in this response, the only time."""
    form = TokenForm(request.POST or None)
    key = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, key = tokens.issue(request.user, form.cleaned_data["name"])
            form = TokenForm()
        else:
            status = 400
    return render(request, "api_tokens.html", {"form": form, "key": key, "tokens": tokens.tokens_of(request.user)},
                  status=status)


@login_required
@require_http_methods(["POST"])
def revoke_api_token(request: HttpRequest, pk: int) -> HttpResponse:
    if tokens.revoke(request.user, pk):
        messages.success(request, "The token is revoked: requests that send it are refused from now on.")
    else:
        messages.error(request, "No such token of yours; it may have been revoked already.")
    return redirect("api_tokens")
