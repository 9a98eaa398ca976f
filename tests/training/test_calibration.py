"""predictors.training.calibration: the referral call's uncertain band and the decision's test figures
(issue 23 item 1): chosen on validation, reported on test in counts a clinician can check."""
from __future__ import annotations

import numpy as np

from predictors.training import calibration


def graded(referable: list[float]) -> np.ndarray:
    """Five-grade probabilities whose grades 2-4 together have each given probability."""
    p = np.asarray(referable)
    return np.stack([1 - p, np.zeros_like(p), p, np.zeros_like(p), np.zeros_like(p)], axis=1)


def test_the_band_leaves_to_a_human_the_probabilities_where_neither_call_is_right_often_enough():
    # Not referable eyes at 0.05-0.30, referable ones at 0.70-0.95, and a mixed stretch at 0.45-0.60.
    scores = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.45, 0.50, 0.55, 0.60,
              0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.46, 0.52, 0.58, 0.48]
    truth = [0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 2, 2, 3, 3, 4, 4, 1, 2, 0, 3]
    band = calibration.referral_band(graded(scores), np.array(truth), 2, threshold=0.65)
    assert band["not_referable_below"] == 0.52 and band["referable_threshold"] == 0.65
    for cut, reliable in ((0.52, True), (0.53, False)):  # the highest cut whose "not referable" calls are reliable
        called_not = np.array(scores) < cut
        assert bool((np.array(truth)[called_not] < 2).mean() >= calibration.REFERRAL_CALL_TARGET) is reliable
    assert band["referable_uncertain"] + band["other_uncertain"] >= 4


def test_a_side_no_cut_makes_reliable_is_never_called():
    scores, truth = [0.1, 0.2, 0.8, 0.9], [3, 3, 0, 0]  # every call would be wrong
    band = calibration.referral_band(graded(scores), np.array(truth), 2, threshold=0.5)
    assert band["not_referable_below"] == 0.0 and band["referable_threshold"] == 1.0
    assert band["referable_uncertain"] == 2 and band["other_uncertain"] == 2


def test_the_test_figures_apply_the_validation_rule_unchanged():
    decision = {"not_referable_below": 0.4, "referable_threshold": 0.6}
    figures = calibration.decision_on_test(decision, graded([0.1, 0.5, 0.9, 0.3, 0.7, 0.45]),
                                           np.array([0, 0, 3, 2, 1, 4]), 2)
    assert figures == {"split": "test", "images": 6, "referable_eyes": 3, "referable_referred": 1,
                       "referable_uncertain": 1, "referable_missed": 1, "other_eyes": 3, "other_referred": 1,
                       "other_uncertain": 1, "other_not_referred": 1}
    finding = calibration.decision_on_test({"uncertain_below": 0.6}, np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7]]),
                                           np.array([0, 0, 0]), None)
    assert finding == {"split": "test", "images": 3, "answered": 2, "answered_right": 1}
