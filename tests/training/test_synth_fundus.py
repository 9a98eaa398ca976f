"""predictors.training.synth_fundus: synthetic fundus photos, reproducible, graded by their lesions."""
from __future__ import annotations

import numpy as np

from predictors.images.gate import scene_scores
from predictors.training import synth_fundus


def test_fundus_generator_is_deterministic_and_gated_as_fundus():
    a, b = synth_fundus.generate(3, 11), synth_fundus.generate(3, 11)
    assert a.size == (synth_fundus.SIZE, synth_fundus.SIZE) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(synth_fundus.generate(3, 12)))
    assert all(scene_scores(synth_fundus.generate(g, 5)).kind == "fundus" for g in range(5))


def lesion_pixels(image) -> float:
    """Dark-red (haemorrhage) and yellow-white (exudate, cotton-wool) pixels."""
    rgb = np.asarray(image, dtype=np.int32)
    red = (rgb[..., 0] > 90) & (rgb[..., 0] < 150) & (rgb[..., 1] < 40) & (rgb[..., 2] < 45)
    pale = (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] > 80)
    return float((red | pale).mean())


def test_fundus_grades_differ_in_lesion_load():
    load = {g: np.mean([lesion_pixels(synth_fundus.generate(g, s)) for s in range(6)]) for g in range(5)}
    assert load[0] < load[2] < load[3]
    assert load[4] > load[1]
