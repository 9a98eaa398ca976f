"""The page side of admission control: the busy page, and the upload it holds for the next submit.

When the server refused a page's image request for lack of a slot
(predictors/server/admission.py), or a model could not answer (its model server away), the
page is shown again as typed, saying why. A browser cannot refill a file input, so the upload is held in the worker's memory,
never on disk (HELD_UPLOADS and HELD_UPLOAD_BYTES at most, for HELD_UPLOAD_SECONDS, for
the clinician who sent it alone), and the page's next submit uses it when no other file
is chosen.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.datastructures import MultiValueDict

from .errors import HttpError, SiteBusy
from .http import with_error_headers
from .server.admission import BUSY_KEY
from .serving.registry import ModelUnavailable

HELD_FIELD = "held_upload"
HELD_UPLOADS = 8
HELD_UPLOAD_BYTES = 32 * 1024 * 1024
HELD_UPLOAD_SECONDS = 15 * 60


def refused(request: HttpRequest) -> bool:
    """Whether the server refused this page's image request for lack of a slot."""
    return BUSY_KEY in request.META


def busy_page(request: HttpRequest, form_class: type[forms.Form], spec: Any) -> HttpResponse:
    """The prediction page again, as typed, saying the site is busy; the file is held for the next submit."""
    return _page_again(request, request.FILES, form_class, spec, SiteBusy(int(request.META[BUSY_KEY])),
                       lambda kept, retry_after: (
                           f"The site is busy with other images. Nothing was recorded; what you typed{kept} kept "
                           f"below. Press Predict again in about {retry_after} seconds."))


def unavailable_page(request: HttpRequest, form: forms.Form, spec: Any, unavailable: ModelUnavailable) -> HttpResponse:
    """The prediction page again, as typed, saying which model cannot answer and why; the file sent
    (or the held one it reused) is held again."""
    return _page_again(request, form.files, type(form), spec, unavailable, lambda kept, retry_after: (
        f"The {unavailable.name} model is unavailable right now: {unavailable.reason}. Nothing was recorded; what "
        f"you typed{kept} kept below. Press Predict again in about {retry_after} seconds."))


def _page_again(request: HttpRequest, files: MultiValueDict, form_class: type[forms.Form], spec: Any,
                refusal: HttpError, error: Callable[[str, str], str]) -> HttpResponse:
    form = form_class(initial=request.POST.dict())
    held = [name for name, upload in files.items() if name in form.fields and upload.size]
    token = _hold(request, files, held) if held else None
    if token:
        form.fields[HELD_FIELD] = forms.CharField(widget=forms.HiddenInput, required=False, initial=token, label="")
        for name in held:
            form.fields[name].help_text = (f"Your file {files[name].name} is kept: press Predict to send it "
                                           "again, or choose another.")
    context = {"form": form, "spec": spec,
               "error": error(" and your file are" if token else " is", refusal.headers["Retry-After"])}
    return with_error_headers(render(request, "predict.html", context, status=refusal.status), refusal)


def files_with_held(request: HttpRequest) -> MultiValueDict:
    """The request's files, plus the upload held by a busy page for each file field left empty."""
    token = request.POST.get(HELD_FIELD, "")
    if not token:
        return request.FILES
    files = request.FILES.copy()
    for name, upload in _claim(request, token).items():
        if not files.get(name):
            files[name] = upload
    return files


@dataclass
class _Held:
    user: int
    files: dict[str, tuple[str, bytes, str]]  # field -> (file name, content, content type)
    at: float

    @property
    def size(self) -> int:
        return sum(len(content) for _, content, _ in self.files.values())


class HeldUploads:
    """Uploads kept in this worker's memory for a busy page's next submit, never on disk.

    Bounded in count and bytes, oldest dropped first, each for HELD_UPLOAD_SECONDS at most
    and claimed once. A page resubmitted to another worker or after a restart finds
    nothing and asks for the file again.
    """

    def __init__(self, count: int, max_bytes: int, seconds: float):
        self.count, self.max_bytes, self.seconds = count, max_bytes, seconds
        self.items: OrderedDict[str, _Held] = OrderedDict()
        self.lock = threading.Lock()

    def hold(self, user: int, files: dict[str, tuple[str, bytes, str]]) -> str | None:
        held = _Held(user, files, time.monotonic())
        if held.size > self.max_bytes:
            return None
        token = secrets.token_urlsafe(18)
        with self.lock:
            self._expire()
            self.items[token] = held
            while len(self.items) > self.count or sum(h.size for h in self.items.values()) > self.max_bytes:
                self.items.popitem(last=False)
        return token

    def claim(self, user: int, token: str) -> dict[str, tuple[str, bytes, str]]:
        with self.lock:
            self._expire()
            held = self.items.get(token)
            if held is None or held.user != user:
                return {}
            del self.items[token]
        return held.files

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, held in self.items.items() if now - held.at > self.seconds]:
            del self.items[token]


_held = HeldUploads(HELD_UPLOADS, HELD_UPLOAD_BYTES, HELD_UPLOAD_SECONDS)


def _hold(request: HttpRequest, files: MultiValueDict, names: list[str]) -> str | None:
    kept = {}
    for name in names:
        upload = files[name]
        upload.seek(0)
        kept[name] = (upload.name, upload.read(), upload.content_type)
    return _held.hold(request.user.pk, kept)


def _claim(request: HttpRequest, token: str) -> dict[str, SimpleUploadedFile]:
    """The uploads held under this token for this user, removed from the store; none if gone or not theirs."""
    return {name: SimpleUploadedFile(filename, content, content_type)
            for name, (filename, content, content_type) in _held.claim(request.user.pk, token).items()}
