"""Per-pixel reductions over an (H, W, 3) picture's colour channels.

numpy reduces a short last axis (3 values a pixel) one pixel at a time, which made
`rgb.max(axis=2)` and its kin most of the gate's and quality check's time; the same
reductions written across the three channel planes run as whole-array operations and
give the same values bit for bit (tests/images/test_channels.py holds them to it).
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def brightest(rgb: np.ndarray) -> np.ndarray:
    """`rgb.max(axis=2)`."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def darkest(rgb: np.ndarray) -> np.ndarray:
    """`rgb.min(axis=2)`."""
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def mean(rgb: np.ndarray) -> np.ndarray:
    """`rgb.mean(axis=2)` of a float32 picture: the channels summed in order, divided by three."""
    if rgb.dtype != np.float32:
        raise TypeError(f"mean() is written for float32 pictures, not {rgb.dtype}")
    return (rgb[..., 0] + rgb[..., 1] + rgb[..., 2]) / np.float32(3)


def as_rgb(image: Image.Image) -> Image.Image:
    """The picture as RGB: itself when it already is (Pillow's convert copies even then, and
    every step after decoding is handed RGB)."""
    return image if image.mode == "RGB" else image.convert("RGB")
