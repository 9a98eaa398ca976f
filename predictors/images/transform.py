"""The one model transform, shared by training and serving pixel for pixel."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PIL import Image

from . import ecg_page, fundus

def model_input(image: Image.Image, spec: Mapping[str, Any]) -> np.ndarray:
    """The model transform: the card's input spec applied to an RGB image.

    Optional image-kind steps come first (``page``: an ECG page rectified, evenly lit,
    deskewed and turned upright; ``crop``: the fundus camera's circular field of view or
    the ECG's lead area; ``grid``: the ECG paper's red grid), then the resize rule, which
    matches torchvision's Resize / CenterCrop / ToTensor / Normalize on PIL images pixel
    for pixel (tests hold it to that), then ``light``: a fundus photo's illumination and
    colour normalised inside its field of view. Training calls this same function, so served pixels
    cannot drift from trained ones.
    """
    page = spec.get("page")
    if page == "straighten":
        image = ecg_page.prepare_page(image)
    elif page is not None:
        raise ValueError(f"unknown page rule {page!r}")
    crop = spec.get("crop")
    if crop == "field_of_view":
        image = fundus.crop_field_of_view(image)
    elif crop == "ecg_grid":
        image = ecg_page.crop_ecg_grid(image, turn_upright=page == "straighten")
    elif crop is not None:
        raise ValueError(f"unknown crop rule {crop!r}")
    grid = spec.get("grid")
    if grid == "suppress_red":
        image = ecg_page.suppress_red_grid(image)
    elif grid is not None:
        raise ValueError(f"unknown grid rule {grid!r}")
    height, width = spec["height"], spec["width"]
    rule = spec["resize"]
    if rule == "shorter_side_then_centre_crop":
        resized = _resize_shorter_side(image, int(spec["resize_shorter_side"]))
        left = int(round((resized.width - width) / 2.0))
        top = int(round((resized.height - height) / 2.0))
        resized = resized.crop((left, top, left + width, top + height))
    elif rule == "stretch":
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
    else:
        raise ValueError(f"unknown resize rule {rule!r}")
    light = spec.get("light")
    if light == "field_of_view":
        array = fundus.normalise_fundus(np.asarray(resized.convert("RGB"), dtype=np.float32)) / 255.0
    elif light is None:
        array = np.asarray(resized.convert("RGB"), dtype=np.float32) / 255.0
    else:
        raise ValueError(f"unknown light rule {light!r}")
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1)[np.newaxis])



def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)
