"""predictors.images.decode: what an upload must be to be read, what it is read as, and within
what memory: what the header promises is refused before decoding, and what is accepted is
reduced to working size before any mode conversion."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.harness import multipart
from bench.hostile import DECODE_CASES, flat_png, float_tiff, peak_above_resting_mb
from predictors.catalogue import image_format_words
from predictors.images.decode import MAX_DECODED_BYTES, ImageRejected, decode, decoded_bytes
from predictors.images.gate import scene_scores

from ..support import LIMITS, api_error, sample

# The site's default pixel cap, under which the large images below are reduced, not refused.
SITE_LIMITS = {"max_bytes": 10_000_000, "max_pixels": 25_000_000}


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_exif_rotated_photo_is_turned_upright():
    upright = decode(sample("ecg", "stemi_printout.png").read_bytes(), **LIMITS).image
    sideways = upright.rotate(90, expand=True)  # as a phone stores a portrait shot
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotate 90° clockwise to view
    decoded = decode(encode(sideways, "JPEG", exif=exif.tobytes(), quality=95), **LIMITS)
    assert (decoded.width, decoded.height) == upright.size
    assert scene_scores(decoded.image).kind == "ecg"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "CMYK", "I;16", "I"])
def test_any_mode_becomes_8_bit_rgb(mode):
    base = decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS).image.resize((200, 200))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        assert image.mode.startswith("I;16")
    elif mode == "I":
        image = base.convert("L").convert("I")
    else:
        image = base.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I") else "PNG"
    decoded = decode(encode(image, fmt), **LIMITS)
    assert decoded.image.mode == "RGB" and decoded.image.size == (200, 200)
    pixels = np.asarray(decoded.image)
    assert pixels.max() > 100, "16-bit and integer images must be scaled, not clipped to black or white"


def test_transparent_pixels_become_white_paper():
    image = Image.new("RGBA", (50, 50), (255, 0, 0, 0))
    decoded = decode(encode(image, "PNG"), **LIMITS)
    assert decoded.image.getpixel((10, 10)) == (255, 255, 255)


def test_record_keeps_fingerprint_not_pixels():
    data = sample("fundus", "microaneurysms.png").read_bytes()
    record = decode(data, **LIMITS).record()
    assert record == {"sha256": __import__("hashlib").sha256(data).hexdigest(), "bytes": len(data),
                      "width": 102, "height": 102, "format": "PNG"}


@pytest.mark.parametrize("data, code, status", [
    (b"", "empty_file", 400),
    (b"%PDF-1.4 not an image at all", "not_an_image", 415),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not_an_image", 415),
])
def test_bad_bytes_are_refused_with_reason(data, code, status):
    with pytest.raises(ImageRejected) as caught:
        decode(data, **LIMITS)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_truncated_jpeg_is_refused():
    data = encode(Image.new("RGB", (400, 400), "orange"), "JPEG")
    with pytest.raises(ImageRejected) as caught:
        decode(data[: len(data) // 2], **LIMITS)
    assert caught.value.code == "corrupt_image"


def test_decompression_bomb_is_refused_from_the_header():
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # tiny file, 400 megapixels
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected) as caught:
        decode(bomb, **LIMITS)
    assert (caught.value.code, caught.value.status) == ("too_many_pixels", 413)


def test_oversized_file_is_refused_before_decoding():
    with pytest.raises(ImageRejected) as caught:
        decode(b"\xff" * 2000, max_bytes=1000, max_pixels=10**6)
    assert caught.value.status == 413


def test_animated_image_is_refused():
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    data = io.BytesIO()
    frames[0].save(data, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageRejected) as caught:
        decode(data.getvalue(), **LIMITS)
    assert caught.value.code == "multi_frame_image" and caught.value.status == 415


def test_unsupported_format_is_refused():
    data = encode(Image.new("RGB", (32, 32)), "ICO")
    with pytest.raises(ImageRejected) as caught:
        decode(data, **LIMITS)
    assert caught.value.code == "unsupported_format" and caught.value.status == 415
    # It names every format the site reads, GIF too.
    assert caught.value.message == f"ICO files are not supported; upload a {image_format_words()} image."
    assert "GIF" in caught.value.message


# The bombs: a few hundred kB each, under the old 40-megapixel cap.
BOMBS = {
    "rgba_png": lambda: flat_png(6000, 6600, 8, 6, 4),
    "grey16_png": lambda: flat_png(6000, 6600, 16, 0, 1),
    "float_tiff": lambda: float_tiff(6000, 6600),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_small_files_that_decode_huge_are_refused_from_the_header(name):
    data = BOMBS[name]()
    assert len(data) < 400_000
    with pytest.raises(ImageRejected) as caught:
        decode(data, max_bytes=10_000_000, max_pixels=40_000_000)
    assert caught.value.status == 413
    assert caught.value.code == "image_too_large_to_decode"


def test_budget_counts_pillow_storage_per_mode():
    assert decoded_bytes("RGB", 100, 10) == 4000  # Pillow pads RGB to four bytes a pixel
    assert decoded_bytes("RGBA", 100, 10) == 4000
    assert decoded_bytes("L", 100, 10) == 1000
    assert decoded_bytes("I;16", 100, 10) == 2000
    assert decoded_bytes("F", 100, 10) == 4000


def test_a_fundus_camera_photo_fits_the_budget():
    assert decoded_bytes("RGB", 4288, 2848) <= MAX_DECODED_BYTES


def test_large_rgba_is_composited_onto_white_after_reduction():
    data = flat_png(3000, 2000, 8, 6, 4, value=0)  # fully transparent black
    decoded = decode(data, **SITE_LIMITS)
    assert (decoded.width, decoded.height) == (3000, 2000)
    assert max(decoded.image.size) < 3000 and min(decoded.image.size) >= 512
    assert decoded.image.mode == "RGB" and decoded.image.getpixel((10, 10)) == (255, 255, 255)


def test_large_16_bit_grey_is_scaled_by_its_full_range_after_reduction():
    decoded = decode(flat_png(2400, 1600, 16, 0, 1, value=32896), **SITE_LIMITS)
    assert min(decoded.image.size) >= 512 and max(decoded.image.size) < 2400
    assert decoded.image.getpixel((3, 3)) == (128, 128, 128)
    dim = decode(flat_png(2400, 1600, 16, 0, 1, value=200), **SITE_LIMITS)  # dark, not mid-grey in 8 bits
    assert dim.image.getpixel((3, 3)) == (0, 0, 0)


def test_large_float_image_is_scaled_by_its_content():
    decoded = decode(float_tiff(2000, 1200, value=1000.0), **SITE_LIMITS)
    assert min(decoded.image.size) >= 512
    assert decoded.image.getpixel((3, 3)) == (3, 3, 3)  # 1000 / 65535 * 255


def test_large_palette_image_keeps_its_colours():
    image = Image.new("P", (3000, 2000))
    image.putpalette([200, 30, 10] * 256)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = decode(buffer.getvalue(), **SITE_LIMITS)
    assert min(decoded.image.size) >= 512 and decoded.image.getpixel((5, 5)) == (200, 30, 10)


def test_exif_rotation_applies_to_the_reduced_image():
    image = Image.new("RGB", (2400, 1200), "white")
    image.paste((0, 0, 0), (0, 0, 1200, 1200))  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif.tobytes())
    decoded = decode(buffer.getvalue(), **SITE_LIMITS)
    assert (decoded.width, decoded.height) == (1200, 2400)
    width, height = decoded.image.size
    assert height > width
    pixels = np.asarray(decoded.image)
    assert pixels[: height // 4].mean() < 10 and pixels[-height // 4:].mean() > 245  # black on top


# The bound: one upload may take the worker at most this far above its resting size.
DECODE_ALLOWANCE_MB = 60


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_decode_bombs_stay_within_the_memory_allowance(strict_site, case):
    data = DECODE_CASES[case]()
    body, content_type = multipart("image", "upload.png", data)
    headers = {"Authorization": f"Token {strict_site.token}", "Content-Type": content_type}
    strict_site.request("GET", "/health/")
    peak, (status, answer, _) = peak_above_resting_mb(
        strict_site, lambda: strict_site.request("POST", "/api/v1/predict/retina", body, headers, timeout=60))
    code = api_error(status, answer)[1]
    if "accepted" in case:
        assert (status, code) == (422, "not_fundus")  # decoded whole, then refused by the gate
    else:
        assert status == 413 and code in ("too_many_pixels", "image_too_large_to_decode")
    assert peak < DECODE_ALLOWANCE_MB, f"{case}: worker peaked {peak:.0f} MB above resting"
