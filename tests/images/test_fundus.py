"""predictors.images.fundus: the lit disc of a fundus photo, cropped square."""
from __future__ import annotations

import numpy as np
from PIL import Image

from predictors.images.fundus import FOV_FIND_SIDE, crop_field_of_view, field_of_view_box, field_of_view_mask
from predictors.training import real_images


def test_fundus_crop_keeps_the_lit_disc_square_and_centred():
    image = real_images.load_rgb(real_images.fundus_images()[0].path)  # 1024×680, disc cut at top and bottom
    cropped = crop_field_of_view(image)
    assert cropped.width == cropped.height and cropped.width < image.width
    pixels = np.asarray(cropped).max(axis=2)
    lit = field_of_view_mask(pixels)
    centre = lit[cropped.height // 2 - 20:cropped.height // 2 + 20, cropped.width // 2 - 20:cropped.width // 2 + 20]
    assert centre.all() and not lit[0, 0] and pixels[0, 0] < 15
    # The disc reaches the left and right edges of the crop: no black margin is left to waste pixels.
    middle_row = lit[cropped.height // 2]
    assert middle_row[5] and middle_row[-6]


def test_the_field_of_view_box_is_where_the_disc_is_in_the_photos_own_pixels():
    image = real_images.load_rgb(real_images.fundus_images()[0].path)  # 1024×680, disc cut at top and bottom
    left, top, right, bottom = field_of_view_box(image)
    assert (top, bottom) == (0, image.height) and 0 < left < right < image.width
    assert 0.7 * image.width < right - left  # the whole width of the disc, not its lit middle
    framed = Image.new("RGB", (1600, 1200))
    framed.paste(image, (300, 200))
    moved = field_of_view_box(framed)
    step = min(framed.size) // FOV_FIND_SIDE  # found on a copy reduced by this factor
    assert np.abs(np.subtract(moved, (left + 300, 200, right + 300, 200 + image.height))).max() <= step
    assert field_of_view_box(Image.new("RGB", (640, 480))) is None
