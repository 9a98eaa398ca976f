"""Decoding within a byte budget: what the header promises is refused before decoding,
and what is accepted is reduced to working size before any mode conversion."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from predictors.images.decode import MAX_DECODED_BYTES, ImageRejected, decode, decoded_bytes

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 25_000_000}


def flat_png(width: int, height: int, bit_depth: int, colour_type: int, channels: int, value: int = 0) -> bytes:
    """A PNG of one flat colour written row by row: a tiny file that decodes to a big image."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    sample = value.to_bytes(bit_depth // 8, "big")
    row = b"\x00" + sample * (width * channels)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def float_tiff(width: int, height: int, value: float = 0.0) -> bytes:
    buffer = io.BytesIO()
    Image.new("F", (width, height), value).save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


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
    decoded = decode(data, **LIMITS)
    assert (decoded.width, decoded.height) == (3000, 2000)
    assert max(decoded.image.size) < 3000 and min(decoded.image.size) >= 512
    assert decoded.image.mode == "RGB" and decoded.image.getpixel((10, 10)) == (255, 255, 255)


def test_large_16_bit_grey_is_scaled_by_its_full_range_after_reduction():
    decoded = decode(flat_png(2400, 1600, 16, 0, 1, value=32896), **LIMITS)
    assert min(decoded.image.size) >= 512 and max(decoded.image.size) < 2400
    assert decoded.image.getpixel((3, 3)) == (128, 128, 128)
    dim = decode(flat_png(2400, 1600, 16, 0, 1, value=200), **LIMITS)  # dark, not mid-grey in 8 bits
    assert dim.image.getpixel((3, 3)) == (0, 0, 0)


def test_large_float_image_is_scaled_by_its_content():
    decoded = decode(float_tiff(2000, 1200, value=1000.0), **LIMITS)
    assert min(decoded.image.size) >= 512
    assert decoded.image.getpixel((3, 3)) == (3, 3, 3)  # 1000 / 65535 * 255


def test_large_palette_image_keeps_its_colours():
    image = Image.new("P", (3000, 2000))
    image.putpalette([200, 30, 10] * 256)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = decode(buffer.getvalue(), **LIMITS)
    assert min(decoded.image.size) >= 512 and decoded.image.getpixel((5, 5)) == (200, 30, 10)


def test_exif_rotation_applies_to_the_reduced_image():
    image = Image.new("RGB", (2400, 1200), "white")
    image.paste((0, 0, 0), (0, 0, 1200, 1200))  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif.tobytes())
    decoded = decode(buffer.getvalue(), **LIMITS)
    assert (decoded.width, decoded.height) == (1200, 2400)
    width, height = decoded.image.size
    assert height > width
    pixels = np.asarray(decoded.image)
    assert pixels[: height // 4].mean() < 10 and pixels[-height // 4:].mean() > 245  # black on top
