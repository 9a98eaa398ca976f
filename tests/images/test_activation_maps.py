"""predictors.images.activation_maps: where the model looked, drawn over the picture it was given
(issue 15 item 6). The API and the result page that show it are in test_api.py and test_presentation.py."""
from __future__ import annotations

import numpy as np

from predictors.images.activation_maps import overlay_png

from ..support import open_png


def test_the_map_is_warm_where_the_evidence_was_and_untouched_elsewhere():
    spec = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    features = np.zeros((1, 3, 64, 64), dtype=np.float32)  # mid grey
    evidence = np.zeros((4, 4), dtype=np.float32)
    evidence[0, 0] = 5.0  # all of it in the top-left cell
    picture = np.asarray(open_png(overlay_png(features, evidence, spec)), dtype=np.float32)
    corner, opposite = picture[:20, :20].mean(axis=(0, 1)), picture[-20:, -20:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 60, "warm (red over blue) where the evidence was"
    assert np.abs(opposite - 127.5).max() < 3, "the picture as given where there was none"


def test_a_map_below_zero_everywhere_still_shows_where_it_was_highest():
    """The class bias can leave every cell negative; the highest one is still where the model looked."""
    spec = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    evidence = np.full((4, 4), -9.0, dtype=np.float32)
    evidence[3, 3] = -2.0
    picture = np.asarray(open_png(overlay_png(np.zeros((1, 3, 64, 64), dtype=np.float32), evidence, spec)),
                         dtype=np.float32)
    corner = picture[-20:, -20:].mean(axis=(0, 1))
    assert corner[0] > corner[2] + 60
