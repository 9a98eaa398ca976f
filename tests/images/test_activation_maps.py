"""predictors.images.activation_maps: where the model looked, the picture it was given in grey under a
colour scale (issues 15 item 6, 23 item 2), at the model input's own size: a JPEG for the result page,
whose legend is HTML, and a PNG with the legend beneath for the API (issue 31). The API and the
result page that show it are in test_api.py and test_presentation.py."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from predictors.images.activation_maps import (LEGEND_HEIGHT, overlay_jpeg, overlay_png, scale_stops,
                                               strongest_place)

from ..support import open_png

SPEC = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
LOW, HIGH = np.array([68, 1, 84]), np.array([253, 231, 37])  # the scale's ends: dark purple, yellow
MID_GREY_AT_LOW = 0.55 * 127.5 + 0.45 * LOW  # a zero input (mid grey) where there was least evidence


def drawn(features: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """The result page's picture, as the browser decodes it."""
    image = Image.open(io.BytesIO(overlay_jpeg(features, evidence, SPEC)))
    assert image.format == "JPEG" and image.mode == "RGB"
    return np.asarray(image, dtype=np.float32)


def test_the_map_is_the_scales_high_end_where_the_evidence_was_and_its_low_end_elsewhere():
    evidence = np.zeros((4, 4), dtype=np.float32)
    evidence[0, 0] = 5.0  # all of it in the top-left cell
    picture = drawn(np.zeros((1, 3, 64, 64), dtype=np.float32), evidence)
    corner, opposite = picture[:6, :6].mean(axis=(0, 1)), picture[-6:, -6:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 40 and corner[1] > corner[2] + 40, "yellow where the evidence was"
    assert opposite[2] > opposite[1] + 20, "purple where there was none"


def test_a_fundus_red_picture_is_shown_in_grey_so_the_colour_is_the_maps_alone():
    features = np.zeros((1, 3, 64, 64), dtype=np.float32)
    features[0, 0], features[0, 1], features[0, 2] = 0.8, -0.2, -0.8  # orange-red, as a fundus is
    picture = drawn(features, np.zeros((4, 4), dtype=np.float32))  # no evidence anywhere: the low end
    grey = 0.299 * 0.9 + 0.587 * 0.4 + 0.114 * 0.1  # the picture's luminance, 0 to 1
    expected = 255 * (grey * 0.55) + LOW * 0.45
    assert np.abs(picture.mean(axis=(0, 1)) - expected).max() < 3


def test_the_lesions_under_the_map_still_show_through():
    features = np.full((1, 3, 64, 64), -0.6, dtype=np.float32)
    features[0, :, 28:36, 28:36] = 0.9  # a bright spot in the middle, under the strongest evidence
    evidence = np.zeros((4, 4), dtype=np.float32)
    evidence[1:3, 1:3] = 5.0
    picture = drawn(features, evidence)
    spot, beside = picture[27:37, 27:37], picture[27:37, 17:22]  # beside it, still under strong evidence
    assert spot.mean() > beside.mean() + 60


def test_the_page_shows_the_picture_at_the_model_inputs_own_size_with_no_legend_in_its_pixels():
    """The browser scales it to the column; the page says what the colours mean in text beside it."""
    evidence = np.zeros((3, 5), dtype=np.float32)
    evidence[0, 0] = 1.0
    picture = drawn(np.zeros((1, 3, 48, 80), dtype=np.float32), evidence)
    assert picture.shape == (48, 80, 3)
    assert np.abs(picture[-3:, -20:].mean(axis=(0, 1)) - MID_GREY_AT_LOW).max() < 4, "the map to its last row"


def test_the_pages_legend_is_drawn_from_the_same_stops_as_the_map():
    stops = scale_stops()
    assert [offset for offset, _ in stops] == ["0%", "25%", "50%", "75%", "100%"]
    assert stops[0][1] == "#440154" and stops[-1][1] == "#fde725"  # LOW and HIGH


def test_the_apis_png_has_the_legend_beneath_from_the_low_end_of_the_scale_to_the_high_end():
    """An API client has no page to say what the colours mean."""
    image = np.asarray(open_png(overlay_png(np.zeros((1, 3, 48, 80), dtype=np.float32),
                                            np.zeros((3, 5), dtype=np.float32), SPEC)), dtype=np.float32)
    assert image.shape == (48 + LEGEND_HEIGHT, 80, 3)
    picture, legend = image[:48], image[48:]
    assert np.abs(picture.mean(axis=(0, 1)) - MID_GREY_AT_LOW).max() < 2, "the same picture as the page's"
    bar = legend[5]
    assert np.abs(bar[0] - LOW).max() < 2 and np.abs(bar[-1] - HIGH).max() < 2
    words = legend[14:]
    assert words[:, :40].min() < 128 and words[:, -40:].min() < 128, "its two ends named"


def test_a_map_below_zero_everywhere_still_shows_where_it_was_highest():
    """The class bias can leave every cell negative; the highest one is still where the model looked."""
    evidence = np.full((4, 4), -9.0, dtype=np.float32)
    evidence[3, 3] = -2.0
    picture = drawn(np.zeros((1, 3, 64, 64), dtype=np.float32), evidence)
    corner = picture[-6:, -6:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 40 and corner[1] > corner[2] + 40


def test_the_place_it_was_strongest_is_said_in_thirds_of_the_picture():
    """For the map's alt text (issue 32 item 5): where, not what colour."""
    def place(row: int, column: int, size: int = 6) -> str:
        evidence = np.zeros((size, size), dtype=np.float32)
        evidence[row, column] = 3.0
        return strongest_place(evidence)

    assert place(0, 0) == "in the top left" and place(5, 5) == "in the bottom right"
    assert place(0, 3) == "in the top centre" and place(3, 0) == "on the left" and place(2, 3) == "in the centre"
    apart = np.zeros((6, 6), dtype=np.float32)
    apart[0, 0] = apart[5, 5] = 1.0  # their centre would be the middle, where it did not look
    assert strongest_place(apart) == "in several places across the picture"
    assert strongest_place(np.full((4, 4), -2.0, dtype=np.float32)) == "nowhere: it is the same everywhere"
