"""Admission control for image work: a few at a time, the rest queue, then "busy".

On a tenth of a CPU two uploads at once take twice as long each and hold two decoded
images in memory; nothing is gained by running them together. So the server runs at
most IMAGE_CONCURRENCY image requests at once (an upload to an image model, from the
API or a page, counted from the parsing of its body to its response) and queues the
rest in its event loop, where waiting holds no thread: forms, pages and /health/ keep
running beside them. A request that waits longer than IMAGE_QUEUE_SECONDS is refused:
the API answers 503 with Retry-After, and a page shows the same form with what was
typed and says the site is busy. The page keeps the chosen file too: a browser cannot
refill a file input, so the upload is held in the worker's memory, never on disk
(HELD_UPLOADS and HELD_UPLOAD_BYTES at most, for HELD_UPLOAD_SECONDS, for the clinician
who sent it alone), and the page's next submit uses it when no other file is chosen.

The event-loop half (ImageAdmission) is called by HealthOracle/asgi.py; the page half
(busy_page, files_with_held) by the prediction page.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

log = logging.getLogger(__name__)

# The environ key by which the bridge tells Django that a page's image request was refused.
BUSY_KEY = "healthoracle.busy_retry_after"
# A multipart part that carries a chosen file; a browser sends filename="" for none. Our
# forms put the file last, after a few hundred bytes of fields.
FILE_PART = re.compile(rb'filename="[^"]')
HEAD_BYTES = 64 * 1024
HELD_FIELD = "held_upload"
HELD_UPLOADS = 8
HELD_UPLOAD_BYTES = 32 * 1024 * 1024
HELD_UPLOAD_SECONDS = 15 * 60


@dataclass
class Ticket:
    """One request's admission: a slot held until release(), or a refusal."""

    refused: bool = False
    retry_after: int = 0
    release: Callable[[], None] = lambda: None

    @property
    def message(self) -> str:
        return (f"The site is busy with other images; try again in {self.retry_after} seconds. "
                "Nothing was recorded.")

    def environ(self) -> dict[str, Any]:
        return {BUSY_KEY: str(self.retry_after)}


ADMITTED = Ticket()


class ImageAdmission:
    """At most `concurrency` image requests run at once; the rest wait up to `wait_seconds`."""

    def __init__(self, concurrency: int, wait_seconds: float, image_paths: set[str], page_paths: set[str]):
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        self.image_paths = image_paths  # API endpoints whose every request is image work
        self.page_paths = page_paths  # pages whose request is image work when it carries a file
        self.slots: asyncio.Semaphore | None = None  # made in the event loop that uses it
        self.waiting = 0
        self.seconds_per_image = 1.0  # a running average, for Retry-After

    @classmethod
    def from_settings(cls) -> "ImageAdmission":
        from .registry import MODEL_SPECS

        images = [spec.name for spec in MODEL_SPECS if spec.input != "tabular"]
        return cls(settings.IMAGE_CONCURRENCY, settings.IMAGE_QUEUE_SECONDS,
                   {reverse("api_predict_image", args=[name]) for name in images},
                   {reverse("predict", args=[spec.name]) for spec in MODEL_SPECS})

    def is_image_work(self, method: str, path: str, body: Any) -> bool:
        if method != "POST" or (path not in self.image_paths and path not in self.page_paths):
            return False
        head = body.read(HEAD_BYTES)
        body.seek(0)
        return FILE_PART.search(head) is not None

    async def admit(self, method: str, path: str, body: Any) -> Ticket:
        """Wait in the event loop for a slot; a refusal past the wait budget."""
        if not self.is_image_work(method, path, body):
            return ADMITTED
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.concurrency)
        if self.slots.locked():
            self.waiting += 1
            try:
                await asyncio.wait_for(self.slots.acquire(), timeout=self.wait_seconds)
            except TimeoutError:
                retry = max(1, math.ceil(self.seconds_per_image * self.waiting / self.concurrency))
                log.warning("image request refused after %.1f s in the queue (%d waiting): %s",
                            self.wait_seconds, self.waiting, path)
                return Ticket(refused=True, retry_after=retry)
            finally:
                self.waiting -= 1
        else:  # a free slot: take it now (wait_for would give up on a zero budget even then)
            await self.slots.acquire()
        started = time.monotonic()

        def release() -> None:
            self.seconds_per_image = 0.8 * self.seconds_per_image + 0.2 * (time.monotonic() - started)
            self.slots.release()

        return Ticket(release=release)


# --- the page side ------------------------------------------------------------------------

def refused(request: HttpRequest) -> bool:
    """Whether the server refused this page's image request for lack of a slot."""
    return BUSY_KEY in request.META


def busy_page(request: HttpRequest, form_class: type[forms.Form], spec: Any) -> HttpResponse:
    """The prediction page again, as typed, saying the site is busy; the file is held for the next submit."""
    retry_after = request.META[BUSY_KEY]
    form = form_class(initial=request.POST.dict())
    held = [name for name, upload in request.FILES.items() if name in form.fields and upload.size]
    token = _hold(request, held) if held else None
    if token:
        form.fields[HELD_FIELD] = forms.CharField(widget=forms.HiddenInput, required=False, initial=token, label="")
        for name in held:
            form.fields[name].help_text = (f"Your file {request.FILES[name].name} is kept: press Predict to send it "
                                           "again, or choose another.")
    error = (f"The site is busy with other images. Nothing was recorded; what you typed"
             f"{' and your file are' if token else ' is'} kept below. Press Predict again in about "
             f"{retry_after} seconds.")
    response = render(request, "predict.html", {"form": form, "spec": spec, "error": error}, status=503)
    response["Retry-After"] = retry_after
    return response


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


def _hold(request: HttpRequest, names: list[str]) -> str | None:
    files = {}
    for name in names:
        upload = request.FILES[name]
        upload.seek(0)
        files[name] = (upload.name, upload.read(), upload.content_type)
    return _held.hold(request.user.pk, files)


def _claim(request: HttpRequest, token: str) -> dict[str, SimpleUploadedFile]:
    """The uploads held under this token for this user, removed from the store; none if gone or not theirs."""
    return {name: SimpleUploadedFile(filename, content, content_type)
            for name, (filename, content, content_type) in _held.claim(request.user.pk, token).items()}
