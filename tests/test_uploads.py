"""Uploads over the limit (predictors/uploads.py): a form error that keeps what was typed, the
bytes of a large file never held, the limit in the units the README gives it."""
from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import InMemoryUploadedFile

from predictors.models import Prediction
from predictors.uploads import CappedMemoryUploadHandler, OversizedUpload

from .support import DIABETES_FORM

pytestmark = pytest.mark.django_db


def test_too_large_upload_is_a_field_error_keeping_the_values(logged_in, artifacts, settings):
    settings.MAX_UPLOAD_BYTES = 1_000_000
    assert 'data-max-bytes="1000000"' in logged_in.get("/predict/diabetes/").content.decode()
    big = io.BytesIO(b"\xff" * 2_500_000)
    big.name = "phone-photo.jpg"
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": "Bed 4",
                                                     "retina_image": big})
    assert response.status_code == 400
    page = response.content.decode()
    assert "The file is 2.4 MB; the limit is 977 kB." in page and "choose it again" in page
    assert 'value="35.1"' in page and 'value="168"' in page and 'value="Bed 4"' in page
    assert "Log out" in page and "<nav" in page  # the site's own layout, not a bare error page
    assert Prediction.objects.count() == 0


def test_the_default_limit_reads_as_the_readme_gives_it(logged_in, artifacts, settings):
    assert settings.MAX_UPLOAD_BYTES == 10 * 1024 * 1024
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert re.search(r"`MAX_UPLOAD_BYTES` \| 10485760 \|", readme)
    big = io.BytesIO(b"\xff" * 13_200_000)
    big.name = "phone-photo.jpg"
    page = html.unescape(logged_in.post("/predict/retina/", {"image": big}).content.decode())
    assert "The file is 12.6 MB; the limit is 10 MB." in page


def test_upload_handler_keeps_small_files_and_drops_the_bytes_of_large_ones(settings, rf):
    settings.MAX_UPLOAD_BYTES = 10
    handler = CappedMemoryUploadHandler(rf.post("/"))
    for payload in (b"123456789", b"0123456789abcdef"):
        handler.new_file("image", "photo.jpg", "image/jpeg", len(payload))
        for start in range(0, len(payload), 4):
            handler.receive_data_chunk(payload[start:start + 4], start)
        upload = handler.file_complete(len(payload))
        if len(payload) <= 10:
            assert isinstance(upload, InMemoryUploadedFile) and upload.read() == payload
        else:
            assert isinstance(upload, OversizedUpload) and upload.size == 16 and upload.read() == b""
