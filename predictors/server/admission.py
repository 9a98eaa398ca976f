"""Admission control for image work: a few at a time, the rest queue, then "busy".

On a tenth of a CPU two uploads at once take twice as long each and hold two decoded
images in memory; nothing is gained by running them together. So the server runs at
most IMAGE_CONCURRENCY image requests at once (an upload to an image model, from the
API or a page, counted from the parsing of its body to its response) and queues the
rest in its event loop, where waiting holds no thread: forms, pages and /health/ keep
running beside them. A request that waits longer than IMAGE_QUEUE_SECONDS is refused:
the API answers 503 with Retry-After, and a page shows the same form with what was
typed and says the site is busy, keeping the chosen file.

ImageAdmission is called by the bridge (predictors/server/bridge.py); the page's half is
predictors/busy.py.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

# The environ key by which the bridge tells Django that a page's image request was refused.
BUSY_KEY = "healthoracle.busy_retry_after"
# A multipart part that carries a chosen file; a browser sends filename="" for none. Our
# forms put the file last, after a few hundred bytes of fields.
FILE_PART = re.compile(rb'filename="[^"]')
HEAD_BYTES = 64 * 1024


@dataclass
class Ticket:
    """One request's admission: a slot held until release(), or a refusal."""

    refused: bool = False
    retry_after: int = 0
    release: Callable[[], None] = lambda: None
    abandoned: bool = False  # the client left while the request waited: run nothing, answer nothing
    image_work: bool = False  # an image request holding a slot, not a form or a page without a file

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
        from django.conf import settings
        from django.urls import reverse

        from predictors.catalogue import MODEL_SPECS

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

    async def admit(self, method: str, path: str, body: Any,
                    client_gone: Callable[[], Awaitable[Any]] | None = None) -> Ticket:
        """Wait in the event loop for a slot; a refusal past the wait budget.

        `client_gone()` completes when the client disconnects: an upload that loses its client
        while queued is abandoned, never run. Nobody would see its answer, it would not be
        recorded as seen, and on a tenth of a CPU it would cost the next clinician seconds.
        """
        if not self.is_image_work(method, path, body):
            return ADMITTED
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.concurrency)
        if self.slots.locked():
            self.waiting += 1
            try:
                if not await self._slot_or_client_gone(client_gone):
                    log.info("client left while its upload waited for an image slot; not processed: %s", path)
                    return Ticket(abandoned=True)
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

        return Ticket(release=release, image_work=True)

    async def _slot_or_client_gone(self, client_gone: Callable[[], Awaitable[Any]] | None) -> bool:
        """True with a slot taken; False, holding none, if the client left first; TimeoutError past the budget."""
        slot = asyncio.ensure_future(asyncio.wait_for(self.slots.acquire(), timeout=self.wait_seconds))
        if client_gone is None:
            await slot
            return True
        gone = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait({slot, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server gave up on the request: no slot may stay taken for it
            slot.cancel()
            raise
        finally:
            gone.cancel()
        if not slot.done():
            slot.cancel()
            try:
                await slot
            except asyncio.CancelledError:
                return False
        slot.result()  # raises TimeoutError past the budget
        if gone.done() and not gone.cancelled():
            self.slots.release()  # the slot came as the client left: hand it on
            return False
        return True
