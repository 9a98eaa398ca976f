"""Decoding limits, modes, the image gate and the one shared model transform."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from predictors.images import ecg_page
from predictors.images.decode import ImageRejected, decode
from predictors.images.ecg_page import crop_ecg_grid, suppress_red_grid
from predictors.images.fundus import crop_field_of_view, field_of_view_mask, normalise_fundus
from predictors.images.gate import gate, scene_scores
from predictors.images.transform import model_input
from predictors.training import real_images
from predictors.training.vision import ecg_spec, retina_spec

from .conftest import SAMPLES, sample

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 40_000_000}
ECG_SAMPLES = sorted(p.name for p in (SAMPLES / "ecg").iterdir())
FUNDUS_SAMPLES = sorted(p.name for p in (SAMPLES / "fundus").iterdir())


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def torchvision_reference(image: Image.Image, spec: dict) -> np.ndarray:
    """What a model trained with standard torchvision transforms expects, around our image-kind steps."""
    if spec.get("page") == "straighten":
        image = ecg_page.prepare_page(image)
    if spec.get("crop") == "field_of_view":
        image = crop_field_of_view(image)
    if spec.get("crop") == "ecg_grid":
        image = crop_ecg_grid(image, turn_upright=spec.get("page") == "straighten")
    if spec.get("grid") == "suppress_red":
        image = suppress_red_grid(image)
    if spec["resize"] == "stretch":
        resize = [transforms.Resize((spec["height"], spec["width"]))]
    else:
        resize = [transforms.Resize(spec["resize_shorter_side"]), transforms.CenterCrop(spec["height"])]
    tensor = transforms.Compose([*resize, transforms.ToTensor()])(image)
    if spec.get("light") == "field_of_view":
        lit = normalise_fundus(tensor.numpy().transpose(1, 2, 0) * 255) / 255
        tensor = torch.from_numpy(np.ascontiguousarray(lit.transpose(2, 0, 1), dtype=np.float32))
    return transforms.Normalize(spec["mean"], spec["std"])(tensor).unsqueeze(0).numpy()


@pytest.mark.parametrize("name", FUNDUS_SAMPLES)
def test_fundus_transform_matches_torchvision_on_real_photos(name):
    image = decode(sample("fundus", name).read_bytes(), **LIMITS).image
    spec = retina_spec(224)
    ours = model_input(image, spec)
    assert ours.shape == (1, 3, 224, 224) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, torchvision_reference(image, spec), atol=1e-5)


@pytest.mark.parametrize("name", ECG_SAMPLES)
def test_ecg_transform_matches_torchvision_on_real_printouts(name):
    image = decode(sample("ecg", name).read_bytes(), **LIMITS).image
    spec = ecg_spec(160, 272)
    ours = model_input(image, spec)
    assert ours.shape == (1, 3, 160, 272)
    np.testing.assert_allclose(ours, torchvision_reference(image, spec), atol=1e-5)


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


def test_ecg_crop_drops_the_report_header_and_grid_suppression_keeps_only_traces():
    page = real_images.load_rgb(real_images.ecg_images()[0].path)
    leads = crop_ecg_grid(page)
    assert leads.height < 0.85 * page.height and leads.width > 0.9 * page.width
    grey = np.asarray(suppress_red_grid(leads))[..., 0]
    array = np.asarray(leads).astype(int)
    grid_ink = (array[..., 0] - array[..., 1] > 30) & (array.max(axis=2) > 150)
    trace_ink = array.max(axis=2) < 80
    assert grid_ink.sum() > 1000 and trace_ink.sum() > 1000
    assert grey[grid_ink].mean() > 200, "the red grid must turn into paper"
    assert grey[trace_ink].mean() < 60, "the black traces must stay dark"


def test_trace_thickening_is_pillows_minimum_filter_pixel_for_pixel():
    from PIL import ImageFilter

    for item in real_images.ecg_images()[::40]:
        page = real_images.load_rgb(item.path)
        brightest = Image.fromarray(np.asarray(page).max(axis=2), "L")
        expected = np.asarray(brightest.filter(ImageFilter.MinFilter(3)))
        np.testing.assert_array_equal(np.asarray(suppress_red_grid(page))[..., 0], expected)


def test_a_page_without_a_red_grid_is_used_whole():
    page = Image.new("RGB", (600, 400), "white")
    assert crop_ecg_grid(page).size == page.size


@pytest.mark.parametrize("name", ECG_SAMPLES)
def test_every_real_ecg_sample_passes_the_ecg_gate_only(name):
    image = decode(sample("ecg", name).read_bytes(), **LIMITS).image
    gate(image, "ecg")
    with pytest.raises(ImageRejected) as caught:
        gate(image, "fundus")
    assert caught.value.status == 422 and caught.value.code == "not_fundus"


def test_every_real_labelled_photo_passes_its_own_gate():
    for kind, items in (("fundus", real_images.fundus_images()), ("ecg", real_images.ecg_images())):
        refused = []
        for item in items:
            try:
                gate(real_images.load_rgb(item.path), kind)
            except ImageRejected as exc:
                refused.append((item.path.name, exc.code))
        assert not refused, f"real {kind} photos refused by their own gate: {refused[:5]}"


def test_real_fundus_photo_passes_the_fundus_gate_only():
    image = decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS).image
    gate(image, "fundus")
    with pytest.raises(ImageRejected, match="does not look like an ECG"):
        gate(image, "ecg")


def test_tiny_greyscale_crop_is_refused_not_graded():
    image = decode(sample("fundus", "microaneurysms.png").read_bytes(), **LIMITS).image  # 102×102 grey crop
    with pytest.raises(ImageRejected) as caught:
        gate(image, "fundus")
    assert (caught.value.code, caught.value.status) == ("image_too_small", 422)
    assert "256 pixels" in caught.value.message


def test_greyscale_fundus_photo_at_full_size_is_refused():
    colour = decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS).image
    with pytest.raises(ImageRejected) as caught:
        gate(colour.convert("L").convert("RGB"), "fundus")
    assert caught.value.code == "not_fundus"


def test_photos_of_other_things_pass_neither_gate():
    import matplotlib

    photo = Image.open(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg").convert("RGB")
    assert scene_scores(photo).kind == "other"
    for blank in (Image.new("RGB", (300, 300), "white"), Image.new("RGB", (300, 300), (128, 128, 128)),
                  Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))):
        assert scene_scores(blank).kind == "other"


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
