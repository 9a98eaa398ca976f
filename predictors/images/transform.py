"""The one model transform, shared by training and serving pixel for pixel."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from . import channels, ecg_page, fundus


def model_input(image: Image.Image, spec: Mapping[str, Any], *,
                rectified_page: Image.Image | None = None) -> np.ndarray:
    """The model transform: the card's input spec applied to an RGB image.

    Optional image-kind steps come first (``page``: an ECG page rectified, evenly lit,
    deskewed and turned upright; ``crop``: the fundus camera's circular field of view or
    the ECG's lead area; ``grid``: the ECG paper's red grid), then the resize rule, which
    matches torchvision's Resize / CenterCrop / ToTensor / Normalize on PIL images pixel
    for pixel (tests hold it to that), then ``light``: a fundus photo's illumination and
    colour normalised inside its field of view. Training calls this same function, so served pixels
    cannot drift from trained ones. `rectified_page` is ecg_page.rectified_page(image), passed
    when the gate has made it already, so that an upload's page is found once; the pixels are
    the same either way (tests/images/test_transform.py).
    """
    shared = {"rectified_page": rectified_page}
    for key, rules in IMAGE_STEPS:
        if spec.get(key) is not None:
            image = _rule(rules, key, spec[key])(image, spec, shared)
    resized = _rule(RESIZE_RULES, "resize", spec["resize"])(image, spec)
    rgb = np.asarray(channels.as_rgb(resized), dtype=np.float32)
    array = _rule(LIGHT_RULES, "light", spec.get("light"))(rgb) / 255.0
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1)[np.newaxis])


def _rule(rules: Mapping[Any, Callable[..., Any]], key: str, name: Any) -> Callable[..., Any]:
    """A card naming a rule this code does not know is refused, never served another way."""
    if name not in rules:
        raise ValueError(f"unknown {key} rule {name!r}")
    return rules[name]


def _shorter_side_then_centre_crop(image: Image.Image, spec: Mapping[str, Any]) -> Image.Image:
    height, width = spec["height"], spec["width"]
    resized = _resize_shorter_side(image, int(spec["resize_shorter_side"]))
    left = int(round((resized.width - width) / 2.0))
    top = int(round((resized.height - height) / 2.0))
    return resized.crop((left, top, left + width, top + height))


def _stretch(image: Image.Image, spec: Mapping[str, Any]) -> Image.Image:
    return image.resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)


def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)


Step = Callable[[Image.Image, Mapping[str, Any]], Image.Image]
# An image-kind step also gets the intermediate pictures made already for this upload, by name.
ImageStep = Callable[[Image.Image, Mapping[str, Any], Mapping[str, Any]], Image.Image]

# The rules a card's input spec can name, by key, in the order the steps run.
IMAGE_STEPS: tuple[tuple[str, Mapping[str, ImageStep]], ...] = (
    ("page", {"straighten": lambda image, spec, shared: ecg_page.prepare_page(image, shared["rectified_page"])}),
    ("crop", {"field_of_view": lambda image, spec, shared: fundus.crop_field_of_view(image),
              "ecg_grid": lambda image, spec, shared: ecg_page.crop_ecg_grid(
                  image, turn_upright=spec.get("page") == "straighten")}),
    ("grid", {"suppress_red": lambda image, spec, shared: ecg_page.suppress_red_grid(image)}),
)
RESIZE_RULES: Mapping[str, Step] = {"shorter_side_then_centre_crop": _shorter_side_then_centre_crop,
                                    "stretch": _stretch}
# On the resized picture as float RGB, 0-255.
LIGHT_RULES: Mapping[str | None, Callable[[np.ndarray], np.ndarray]] = {
    None: lambda rgb: rgb, "field_of_view": fundus.normalise_fundus}
