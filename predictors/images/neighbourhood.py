"""Square-neighbourhood filters on the small analysis arrays, edges replicated.

Written as sums (or ANDs) of shifted slices, one axis at a time: a few whole-array
operations each, instead of an integral image in float64 (three times the time in the
quality check, issue 22's profile).
"""
from __future__ import annotations

import numpy as np


def box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The float32 mean of each (2 radius + 1)-square neighbourhood."""
    size = 2 * radius + 1
    height, width = values.shape
    padded = np.pad(values.astype(np.float32, copy=False), radius, mode="edge")
    rows = padded[:height].copy()
    for shift in range(1, size):
        rows += padded[shift:shift + height]
    total = rows[:, :width].copy()
    for shift in range(1, size):
        total += rows[:, shift:shift + width]
    total /= np.float32(size * size)
    return total


def erode(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """True where the whole (2 radius + 1)-square neighbourhood is True."""
    size = 2 * radius + 1
    height, width = mask.shape
    padded = np.pad(mask, radius, mode="edge")
    rows = padded[:height].copy()
    for shift in range(1, size):
        rows &= padded[shift:shift + height]
    inside = rows[:, :width].copy()
    for shift in range(1, size):
        inside &= rows[:, shift:shift + width]
    return inside
