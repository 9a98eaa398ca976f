"""predictors.training.calibration: the referral call's uncertain band and the decision's test figures
(issue 23 item 1): chosen on validation, reported on test in counts a clinician can check; a
referable eye called "not referable" kept rare (issue 30)."""
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
    # Under 0.52 the "not referable" calls are right 90% of the time, but the referable eye at 0.48
    # (one in eight, more than MAX_REFERABLE_MISSED) would be called so: the edge stays under it.
    assert band["not_referable_below"] == 0.48 and band["referable_threshold"] == 0.65
    called_not = np.array(scores) < 0.52
    assert (np.array(truth)[called_not] < 2).mean() >= calibration.REFERRAL_CALL_TARGET
    assert 1 / 8 > calibration.MAX_REFERABLE_MISSED
    assert band["referable_missed"] == 0 and band["referable_missed_ci95"][0] == 0.0
    assert band["referable_uncertain"] + band["other_uncertain"] >= 6


def test_the_lower_edge_lets_a_small_share_of_referable_eyes_under_it_and_no_more():
    # 40 referable eyes from 0.50 up, two of them low (0.10 and 0.30); 20 others at 0.05-0.24.
    referable = [0.10, 0.30] + list(np.linspace(0.5, 0.95, 38))
    others = list(np.linspace(0.05, 0.24, 20))
    scores, truth = referable + others, [2] * 40 + [0] * 20
    band = calibration.referral_band(graded(scores), np.array(truth), 2, threshold=0.5)
    assert calibration.MAX_REFERABLE_MISSED * 40 >= 1 > calibration.MAX_REFERABLE_MISSED * 40 - 1
    assert band["not_referable_below"] == 0.3 and band["referable_missed"] == 1  # the eye at 0.10, not 0.30
    low, high = band["referable_missed_ci95"]
    assert 0 < low < 0.025 < 0.1 < high < 0.15  # 1 of 40: Wilson 0.0044-0.1289


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
                       "referable_uncertain": 1, "referable_missed": 1,
                       "referable_missed_ci95": calibration.proportion_interval(1, 3), "other_eyes": 3, "other_referred": 1,
                       "other_uncertain": 1, "other_not_referred": 1}
    finding = calibration.decision_on_test({"uncertain_below": 0.6}, np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7]]),
                                           np.array([0, 0, 0]), None)
    assert finding == {"split": "test", "images": 3, "answered": 2, "answered_right": 1}
