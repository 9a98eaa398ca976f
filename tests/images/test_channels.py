"""The channel reductions every image step uses give numpy's own axis-2 reductions, bit for bit:
a faster way to the same gate scores, quality measures and model inputs, never other ones."""
import numpy as np
import pytest
from PIL import Image

from predictors.images import channels


@pytest.fixture(params=[np.float32, np.uint8], ids=["float32", "uint8"])
def picture(request) -> np.ndarray:
    values = np.random.default_rng(7).random((97, 131, 3), dtype=np.float32) * 255
    return values.astype(request.param)


def test_brightest_and_darkest_are_numpys_max_and_min(picture):
    assert np.array_equal(channels.brightest(picture), picture.max(axis=2))
    assert np.array_equal(channels.darkest(picture), picture.min(axis=2))


def test_mean_is_numpys_float32_mean_bit_for_bit():
    picture = np.random.default_rng(8).random((97, 131, 3), dtype=np.float32) * 255
    for view in (picture, picture[::4, ::3]):
        ours, numpys = channels.mean(view), view.mean(axis=2)
        assert ours.dtype == numpys.dtype == np.float32
        assert np.array_equal(ours, numpys)


def test_mean_refuses_what_numpy_would_average_in_float64():
    with pytest.raises(TypeError):
        channels.mean(np.zeros((4, 4, 3), dtype=np.uint8))


def test_as_rgb_hands_back_an_rgb_picture_itself_and_converts_others():
    rgb = Image.new("RGB", (8, 8), (10, 20, 30))
    assert channels.as_rgb(rgb) is rgb
    grey = Image.new("L", (8, 8), 50)
    assert channels.as_rgb(grey).mode == "RGB" and channels.as_rgb(grey).getpixel((0, 0)) == (50, 50, 50)
