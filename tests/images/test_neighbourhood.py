"""The neighbourhood filters the quality check and the page finder use, against their definition:
every pixel's own square of neighbours, edges replicated, worked out one pixel at a time."""
import numpy as np
import pytest

from predictors.images.neighbourhood import box_mean, erode


def by_definition(values: np.ndarray, radius: int, reduce) -> np.ndarray:
    padded = np.pad(values, radius, mode="edge")
    size = 2 * radius + 1
    return np.array([[reduce(padded[y:y + size, x:x + size]) for x in range(values.shape[1])]
                     for y in range(values.shape[0])])


@pytest.mark.parametrize("radius", [1, 3, 4])
def test_box_mean_is_each_squares_mean(radius):
    values = np.random.default_rng(radius).random((23, 31), dtype=np.float32) * 255
    ours = box_mean(values, radius)
    assert ours.dtype == np.float32 and ours.shape == values.shape
    assert np.allclose(ours, by_definition(values, radius, np.mean), atol=1e-3)


@pytest.mark.parametrize("radius", [1, 4])
def test_erode_keeps_what_its_whole_square_covers(radius):
    mask = np.random.default_rng(radius).random((23, 31)) > 0.05
    mask[5:18, 4:25] = True  # a solid block, so something survives the larger radius
    assert np.array_equal(erode(mask, radius), by_definition(mask, radius, np.all))
