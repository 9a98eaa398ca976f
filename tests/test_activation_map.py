"""Where the model looked: shown on the result page, returned by the API when asked (issue 15 item 6)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from predictors.images.activation_maps import overlay_png

from .conftest import sample
from .test_api import post_image


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize("model, file", [("retina", ("fundus", "retina.jpg")), ("ecg", ("ecg", "ecg00001.png"))])
def test_the_api_returns_the_map_as_a_png_only_when_asked(client, artifacts, api_token, model, file):
    data = sample(*file).read_bytes()
    plain = post_image(client, model, data, api_token).json()
    assert "activation_map_png" not in plain
    asked = client.post(f"/api/v1/predict/{model}?activation_map=1", {"image": _named(data)},
                        HTTP_AUTHORIZATION=f"Token {api_token}")
    assert asked.status_code == 200, asked.content
    picture = _png(base64.b64decode(asked.json()["activation_map_png"]))
    assert picture.width == 320 and picture.mode == "RGB"


def test_the_result_page_shows_the_map_beside_the_thumbnail(logged_in, artifacts):
    response = logged_in.post("/predict/retina/", {"image": _named(sample("fundus", "retina.jpg").read_bytes())})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="activation-map"' in page and 'src="data:image/png;base64,' in page
    assert "Where the model looked" in page


def test_the_map_is_warm_where_the_evidence_was_and_untouched_elsewhere():
    spec = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    features = np.zeros((1, 3, 64, 64), dtype=np.float32)  # mid grey
    evidence = np.zeros((4, 4), dtype=np.float32)
    evidence[0, 0] = 5.0  # all of it in the top-left cell
    picture = np.asarray(_png(overlay_png(features, evidence, spec)), dtype=np.float32)
    corner, opposite = picture[:20, :20].mean(axis=(0, 1)), picture[-20:, -20:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 60, "warm (red over blue) where the evidence was"
    assert np.abs(opposite - 127.5).max() < 3, "the picture as given where there was none"


def test_a_map_below_zero_everywhere_still_shows_where_it_was_highest():
    """The class bias can leave every cell negative; the highest one is still where the model looked."""
    spec = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    evidence = np.full((4, 4), -9.0, dtype=np.float32)
    evidence[3, 3] = -2.0
    picture = np.asarray(_png(overlay_png(np.zeros((1, 3, 64, 64), dtype=np.float32), evidence, spec)),
                         dtype=np.float32)
    corner = picture[-20:, -20:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 60


def _named(data: bytes) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = "upload.jpg"
    return upload
