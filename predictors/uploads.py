"""Reading an uploaded image so that a file over the limit becomes a form error.

Django's own handlers either keep a file or abort the whole request; either way a
clinician who picked a 15 MB photo would lose every value typed on the page. This
handler keeps a file in memory up to `settings.MAX_UPLOAD_BYTES` and reads a larger
one to its end without keeping it, so every other field still arrives and the form's
image field can say how large the file was. The request body as a whole stays capped
by `RequestLimitsMiddleware`.
"""
from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler


class OversizedUpload(UploadedFile):
    """A file that was larger than the limit: its name and size, none of its bytes."""

    def __init__(self, name: str, content_type: str, size: int, charset: str | None):
        super().__init__(io.BytesIO(), name=name, content_type=content_type, size=size, charset=charset)


class CappedMemoryUploadHandler(FileUploadHandler):
    """Keeps files up to the upload limit in memory and drops the bytes of larger ones."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.buffer: io.BytesIO | None = io.BytesIO()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.buffer is not None and self.received > settings.MAX_UPLOAD_BYTES:
            self.buffer = None  # over the limit: count the rest, keep none of it
        if self.buffer is not None:
            self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile:
        if self.buffer is None:
            return OversizedUpload(self.file_name, self.content_type, file_size, self.charset)
        self.buffer.seek(0)
        return InMemoryUploadedFile(file=self.buffer, field_name=self.field_name, name=self.file_name,
                                    content_type=self.content_type, size=file_size, charset=self.charset,
                                    content_type_extra=self.content_type_extra)
