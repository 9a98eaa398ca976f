"""Honest confidence for the image models: temperature scaling, reliability, and the decision
thresholds the site answers with, all fitted on the validation split of the served graph.

A network trained with cross-entropy on a few hundred images is over-confident: it says
"99%" where it is right 80% of the time. One temperature, divided into the logits before
the softmax, is the calibration with the fewest parameters to overfit on a small
validation set (Guo et al., 2017). The thresholds are chosen on the same calibrated
validation probabilities, and the card records what they give there, counted by the rules the
site answers with (predictors.decision).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from predictors.decision import finding_uncertain, referable_score, refers, rules_out

from .evaluation import proportion_interval

# The temperature is searched on a log grid; beyond these ends the model is broken, not miscalibrated.
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))
RELIABILITY_BINS = 10
# Never call an answer certain below this, whatever validation says: a near coin-flip is not an answer.
MIN_UNCERTAIN_BELOW = 0.5
# The referable threshold keeps at least this sensitivity for referable eyes on validation.
REFERABLE_SENSITIVITY_TARGET = 0.90
# Each referral call the model makes ("referable", "not referable") is right at least this often on
# validation; probabilities of a referable grade where either call falls short are "uncertain".
REFERRAL_CALL_TARGET = 0.90
# A referable eye called "not referable" is the costliest error a screening call makes (nobody looks
# again): the band's lower edge lets at most this share of validation's referable eyes fall under it.
MAX_REFERABLE_MISSED = 0.03


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood."""
    losses = [negative_log_likelihood(logits, y, t) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = RELIABILITY_BINS) -> float:
    """Top-label ECE: the average gap between confidence and accuracy over equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(float(correct[in_bin].mean()) - float(confidence[in_bin].mean()))
    return float(error)


def reliability_points(probs: np.ndarray, y: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict[str, float]]:
    """Per confidence bin: mean confidence, accuracy and count, for the reliability plot."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    points = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            points.append({"confidence": round(float(confidence[in_bin].mean()), 4),
                           "accuracy": round(float(correct[in_bin].mean()), 4), "images": int(in_bin.sum())})
    return points


def uncertain_threshold(probs: np.ndarray, y: np.ndarray, target: float) -> dict[str, Any]:
    """The cut-off below which a finding is uncertain (decision.finding_uncertain): the lowest top
    probability whose answered images reach the accuracy target on validation (the largest
    coverage that does), with the coverage and accuracy it gives there."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    chosen = None
    for cut in np.round(np.arange(MIN_UNCERTAIN_BELOW, 0.991, 0.01), 2):
        answered = ~finding_uncertain(confidence, cut)
        if answered.sum() >= 1 and correct[answered].mean() >= target:
            chosen = float(cut)
            break
    if chosen is None:
        chosen = 0.99
    answered = ~finding_uncertain(confidence, chosen)
    return {
        "uncertain_below": chosen,
        "answered_accuracy_target": target,
        "coverage": round(float(answered.mean()), 4),
        "accuracy_answered": round(float(correct[answered].mean()), 4) if answered.any() else None,
        "accuracy_all": round(float(correct.mean()), 4),
    }


def referable_threshold(probs: np.ndarray, y: np.ndarray, referable_grade: int) -> dict[str, Any]:
    """The highest cut-off on the probability of a referable grade that still finds
    REFERABLE_SENSITIVITY_TARGET of the referable eyes on validation, with the sensitivity and
    specificity it gives there."""
    score = referable_score(probs, referable_grade)
    truth = y >= referable_grade
    threshold = 0.5
    if truth.any():
        for cut in np.round(np.arange(0.95, 0.049, -0.01), 2):
            if refers(score[truth], cut).mean() >= REFERABLE_SENSITIVITY_TARGET:
                threshold = float(cut)
                break
    called = refers(score, threshold)
    return {
        "referable_threshold": threshold,
        "referable_sensitivity_target": REFERABLE_SENSITIVITY_TARGET,
        "referable_sensitivity": round(float(called[truth].mean()), 4) if truth.any() else None,
        "referable_specificity": round(float((~called[~truth]).mean()), 4) if (~truth).any() else None,
    }


def referral_band(probs: np.ndarray, y: np.ndarray, referable_grade: int, threshold: float) -> dict[str, Any]:
    """The uncertain band of the referral call: "not referable" below `not_referable_below`,
    "referable" from `referable_threshold`, uncertain between (decision.referral_call).

    The screening question is referable or not, so its uncertainty is that call's, not the
    top grade's. On validation, the lower edge is the highest cut at or under the threshold
    under which at most MAX_REFERABLE_MISSED of the referable eyes fall and whose "not
    referable" calls are right at least REFERRAL_CALL_TARGET of the time: a call right that
    often on a split where referable eyes are common can still miss one referable eye in five,
    which no human read then catches (issue 30). Those called referable must have referable
    disease as often (the lowest cut at or over the threshold that does); a side no cut
    satisfies is never called, so all of it goes to a human read.
    """
    score = referable_score(probs, referable_grade)
    truth = y >= referable_grade
    cuts = np.round(np.arange(0.01, 1.0, 0.01), 2)

    def rules_out_safely(cut: float) -> bool:
        out = rules_out(score, cut, threshold)
        return (out.any() and (out & truth).sum() <= MAX_REFERABLE_MISSED * truth.sum()
                and (~truth[out]).mean() >= REFERRAL_CALL_TARGET)

    # Each side's cut is tried as the band's edge with the other edge at the threshold.
    lower = next((float(cut) for cut in cuts[::-1] if cut <= threshold and rules_out_safely(cut)), 0.0)
    upper = next((float(cut) for cut in cuts if cut >= threshold and refers(score, cut).any()
                  and truth[refers(score, cut)].mean() >= REFERRAL_CALL_TARGET), 1.0)
    return {"not_referable_below": lower, "referable_threshold": upper, "referral_call_target": REFERRAL_CALL_TARGET,
            "max_referable_missed": MAX_REFERABLE_MISSED, **referral_figures(probs, y, referable_grade, lower, upper)}


def referral_figures(probs: np.ndarray, y: np.ndarray, referable_grade: int, lower: float,
                     upper: float) -> dict[str, Any]:
    """What the referral rule does on a split, in counts a clinician can check: of the referable eyes,
    how many it refers, leaves to a human read, and misses (with the 95% interval of the share
    missed: a few dozen eyes say little more than its order); of the others, how many it refers
    needlessly."""
    score = referable_score(probs, referable_grade)
    truth = y >= referable_grade
    referred, not_referred = refers(score, upper), rules_out(score, lower, upper)
    uncertain = ~referred & ~not_referred
    return {
        "images": int(len(y)),
        "referable_eyes": int(truth.sum()),
        "referable_referred": int((referred & truth).sum()),
        "referable_uncertain": int((uncertain & truth).sum()),
        "referable_missed": int((not_referred & truth).sum()),
        "referable_missed_ci95": proportion_interval(int((not_referred & truth).sum()), int(truth.sum())),
        "other_eyes": int((~truth).sum()),
        "other_referred": int((referred & ~truth).sum()),
        "other_uncertain": int((uncertain & ~truth).sum()),
        "other_not_referred": int((not_referred & ~truth).sum()),
    }


def finding_figures(probs: np.ndarray, y: np.ndarray, uncertain_below: float) -> dict[str, Any]:
    """What the uncertain rule of a finding does on a split: how many images it answers, and how
    many of those it gets right."""
    answered = ~finding_uncertain(probs.max(axis=1), uncertain_below)
    return {"images": int(len(y)), "answered": int(answered.sum()),
            "answered_right": int((probs.argmax(axis=1) == y)[answered].sum())}


def decision_on_test(decision: dict[str, Any], probs: np.ndarray, y: np.ndarray,
                     referable_grade: int | None) -> dict[str, Any]:
    """The served rule's figures on the test photos (calibrated probabilities, as the site's are):
    the card's `decision.test`, what the rule chosen on validation gives on photos nobody tuned it on."""
    if referable_grade is not None:
        return {"split": "test", **referral_figures(probs, y, referable_grade, decision["not_referable_below"],
                                                    decision["referable_threshold"])}
    return {"split": "test", **finding_figures(probs, y, decision["uncertain_below"])}


def calibrate(logits: np.ndarray, y: np.ndarray, answered_accuracy_target: float,
              referable_grade: int | None, temperature: float | None = None) -> dict[str, Any]:
    """Card sections "calibration" and "decision" from the served graph's validation logits: a
    finding's uncertain rule, or for a graded model (one with a referable grade) its referral call
    and that call's uncertain band.
    `temperature` keeps a card's own (refitting the decision alone); by default it is fitted."""
    temperature = fit_temperature(logits, y) if temperature is None else temperature
    before, after = softmax(logits), softmax(logits, temperature)
    calibration = {
        "method": "temperature scaling (one temperature dividing the logits), fitted by validation "
                  "negative log-likelihood",
        "split": "validation",
        "images": int(len(y)),
        "temperature": round(temperature, 4),
        "ece_before": round(expected_calibration_error(before, y), 4),
        "ece_after": round(expected_calibration_error(after, y), 4),
        "reliability_before": reliability_points(before, y),
        "reliability_after": reliability_points(after, y),
    }
    if referable_grade is None:
        decision = {"split": "validation", **uncertain_threshold(after, y, answered_accuracy_target)}
    else:  # the referral call is the answer, and its band the uncertain rule; the grade is read beneath it
        threshold = referable_threshold(after, y, referable_grade)["referable_threshold"]
        decision = {"split": "validation", "referable_sensitivity_target": REFERABLE_SENSITIVITY_TARGET,
                    **referral_band(after, y, referable_grade, threshold)}
    return {"calibration": calibration, "decision": decision}
