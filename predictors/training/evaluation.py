"""Image-model metrics on real held-out photographs, each with a bootstrap interval.

Test sets here are small (dozens of images, a handful in the rarest classes), so a
point estimate alone overstates what is known; every headline figure carries a 95%
percentile-bootstrap interval over images.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, recall_score, roc_auc_score

from predictors.decision import referable_score

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 7
TARGET_SPECIFICITY = 0.80
# The normal quantile of a two-sided 95% interval.
Z95 = 1.959964


def proportion_interval(count: int, total: int) -> list[float] | None:
    """The 95% Wilson score interval of count/total: a share of a few dozen eyes (7 of 33, 0 of 36)
    needs an interval that stays inside 0-1 and is not zero-width at 0 or 1, as the normal one is."""
    if total <= 0:
        return None
    share, z2 = count / total, Z95 ** 2
    centre = (share + z2 / (2 * total)) / (1 + z2 / total)
    half = Z95 * np.sqrt(share * (1 - share) / total + z2 / (4 * total ** 2)) / (1 + z2 / total)
    return [round(max(0.0, float(centre - half)), 4), round(min(1.0, float(centre + half)), 4)]


def _interval(metric: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        idx = rng.integers(0, len(y), len(y))
        try:
            value = metric(y[idx], probs[idx])
        except ValueError:  # a resample without both classes has no AUC
            continue
        if np.isfinite(value):
            values.append(value)
    point = metric(y, probs)
    low, high = (np.percentile(values, [2.5, 97.5]) if values else (np.nan, np.nan))
    return {"value": round(float(point), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def sensitivity_at_specificity(truth: np.ndarray, score: np.ndarray, specificity: float = TARGET_SPECIFICITY) -> float:
    """Sensitivity at the lowest threshold that keeps specificity at or above the target."""
    negatives = np.sort(score[~truth])
    if negatives.size == 0 or truth.sum() == 0:
        return float("nan")
    threshold = negatives[min(len(negatives) - 1, int(np.ceil(specificity * len(negatives))) - 1)]
    return float((score[truth] > threshold).mean())


def referral_metrics(y: np.ndarray, probs: np.ndarray, labels: list[str], referable_grade: int) -> dict[str, Any]:
    """A graded screening model's figures: how well it ranks and calls referable eyes, and how
    close its grades come (the card keys say DR: the one graded model is the retina model)."""
    classes = len(labels)
    pred = probs.argmax(axis=1)
    truth = y >= referable_grade
    score = referable_score(probs, referable_grade)
    called = pred >= referable_grade
    worse = labels[referable_grade][:1].lower() + labels[referable_grade][1:]
    return {
        "images": int(len(y)),
        "referable_dr_auc": _interval(
            lambda t, p: roc_auc_score(t >= referable_grade, referable_score(p, referable_grade)), y, probs),
        "sensitivity_at_80_specificity": _interval(
            lambda t, p: sensitivity_at_specificity(t >= referable_grade, referable_score(p, referable_grade)),
            y, probs),
        "quadratic_weighted_kappa": _interval(
            lambda t, p: cohen_kappa_score(t, p.argmax(1), weights="quadratic", labels=range(classes)), y, probs),
        "accuracy": _interval(lambda t, p: float((p.argmax(1) == t).mean()), y, probs),
        "referable_dr_at_argmax": {
            "definition": f"grade >= {referable_grade} ({worse} or worse), called when the top grade is "
                          f">= {referable_grade}",
            "sensitivity": round(float((called & truth).sum() / max(1, truth.sum())), 4),
            "specificity": round(float((~called & ~truth).sum() / max(1, (~truth).sum())), 4),
        },
        "referable_dr_auc_point": round(float(roc_auc_score(truth, score)), 4) if 0 < truth.sum() < len(y) else None,
        "confusion_matrix": confusion_matrix(y, pred, labels=range(classes)).tolist(),
    }


def class_metrics(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """An ungraded classifier's figures: macro-F1, accuracy and each class's recall."""
    pred = probs.argmax(axis=1)
    classes = range(len(labels))
    return {
        "images": int(len(y)),
        "macro_f1": _interval(lambda t, p: f1_score(t, p.argmax(1), average="macro", labels=classes,
                                                    zero_division=0), y, probs),
        "accuracy": _interval(lambda t, p: float((p.argmax(1) == t).mean()), y, probs),
        "recall": {label: _interval(lambda t, p, c=c: recall_score(t == c, p.argmax(1) == c, zero_division=0)
                                    if (t == c).any() else float("nan"), y, probs)
                   for c, label in enumerate(labels)},
        "support": {label: int((y == c).sum()) for c, label in enumerate(labels)},
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
    }

