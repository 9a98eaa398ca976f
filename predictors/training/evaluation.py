"""Image-model metrics on real held-out photographs, each with a bootstrap interval.

Test sets here are small (dozens of images, a handful in the rarest classes), so a
point estimate alone overstates what is known; every headline figure carries a 95%
percentile-bootstrap interval over images.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, recall_score, roc_auc_score

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 7
REFERABLE_GRADE = 2
TARGET_SPECIFICITY = 0.80


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


def referable_score(probs: np.ndarray) -> np.ndarray:
    """P(grade >= 2): the probability mass on moderate NPDR or worse."""
    return probs[:, REFERABLE_GRADE:].sum(axis=1)


def sensitivity_at_specificity(truth: np.ndarray, score: np.ndarray, specificity: float = TARGET_SPECIFICITY) -> float:
    """Sensitivity at the lowest threshold that keeps specificity at or above the target."""
    negatives = np.sort(score[~truth])
    if negatives.size == 0 or truth.sum() == 0:
        return float("nan")
    threshold = negatives[min(len(negatives) - 1, int(np.ceil(specificity * len(negatives))) - 1)]
    return float((score[truth] > threshold).mean())


def retina_metrics(y: np.ndarray, probs: np.ndarray, classes: int) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    truth = y >= REFERABLE_GRADE
    score = referable_score(probs)
    called = pred >= REFERABLE_GRADE
    return {
        "images": int(len(y)),
        "referable_dr_auc": _interval(lambda t, p: roc_auc_score(t >= REFERABLE_GRADE, referable_score(p)), y, probs),
        "sensitivity_at_80_specificity": _interval(
            lambda t, p: sensitivity_at_specificity(t >= REFERABLE_GRADE, referable_score(p)), y, probs),
        "quadratic_weighted_kappa": _interval(
            lambda t, p: cohen_kappa_score(t, p.argmax(1), weights="quadratic", labels=range(classes)), y, probs),
        "accuracy": _interval(lambda t, p: float((p.argmax(1) == t).mean()), y, probs),
        "referable_dr_at_argmax": {
            "definition": "grade >= 2 (moderate NPDR or worse), called when the top grade is >= 2",
            "sensitivity": round(float((called & truth).sum() / max(1, truth.sum())), 4),
            "specificity": round(float((~called & ~truth).sum() / max(1, (~truth).sum())), 4),
        },
        "referable_dr_auc_point": round(float(roc_auc_score(truth, score)), 4) if 0 < truth.sum() < len(y) else None,
        "confusion_matrix": confusion_matrix(y, pred, labels=range(classes)).tolist(),
    }


def ecg_metrics(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
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


def key_metric(name: str, metrics: dict[str, Any]) -> float:
    """The figure the int8 graph is judged on: referable-DR AUC (retina), macro-F1 (ECG)."""
    return float(metrics["referable_dr_auc" if name == "retina" else "macro_f1"]["value"])
