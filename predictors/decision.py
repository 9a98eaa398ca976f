"""The one decision an image result carries, and the words for it, for training and the site alike.

A graded screening model (one with a `referable_grade` in the catalogue) answers its screening
question: referable when the probability of its referable grade or worse reaches the card's
`referable_threshold`, not referable under the card's `not_referable_below`, uncertain between.
Any other image model gives its finding, uncertain when the finding's probability is under the
card's `uncertain_below`. Training chooses those thresholds on validation images and counts what
they give (training/calibration.py, training/evaluation.py); the site answers by them
(services.run_image) and says them (presentation, caveats, the model card, the OpenAPI
document), all through this module, so the rule a card states is the rule a result is decided by.

Plain Python that never imports numpy: the rules take one probability or numpy arrays of them
alike (training passes a split's, the site one image's), and a forms-only page loads no numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, TypeVar

from .catalogue import ModelSpec
from .formatting import percent

if TYPE_CHECKING:
    import numpy as np

Score = TypeVar("Score", float, "np.ndarray")

# A graded result's calls, as the catalogue keys their answers and next steps.
REFERABLE, NOT_REFERABLE, UNCERTAIN = "referable", "not_referable", "uncertain"
NEEDS_HUMAN_READ = "needs a human read"
UNCERTAIN_WORDS = f"Uncertain: {NEEDS_HUMAN_READ}"
# Top two classes closer than this: a near coin-flip between them, however high the top one is.
CLOSE_CALL_MARGIN = 0.15


def referable_score(probabilities: "np.ndarray", referable_grade: int) -> Any:
    """The probability of a referable grade: the mass on it and on every worse one.

    Of one image's grade probabilities (a number) or of a split's, one row per image (an array).
    """
    return probabilities[..., referable_grade:].sum(axis=-1)


def refers(score: Score, referable_threshold: float) -> Score:
    """The referable call: from the threshold up."""
    return score >= referable_threshold


def rules_out(score: Score, not_referable_below: float, referable_threshold: float) -> Score:
    """The not-referable call: under the band's lower edge (and never where the call is referable)."""
    return (score < not_referable_below) & (score < referable_threshold)


def referral_call(score: float, not_referable_below: float, referable_threshold: float) -> str:
    """REFERABLE, NOT_REFERABLE, or UNCERTAIN between the two edges."""
    if refers(score, referable_threshold):
        return REFERABLE
    return NOT_REFERABLE if rules_out(score, not_referable_below, referable_threshold) else UNCERTAIN


def finding_uncertain(top_probability: Score, uncertain_below: float) -> Score:
    """A finding's uncertain rule: its probability is under the card's threshold."""
    return top_probability < uncertain_below


def is_uncertain(outputs: Mapping[str, Any]) -> bool:
    """A recorded image result's uncertain call, read as made when it was recorded.

    The thresholds came from the card of the model version that answered, so the call is read
    from the record, never recomputed; results recorded before the card carried thresholds kept
    the fixed rule of the day under the name `low_confidence`.
    """
    return bool(outputs.get("uncertain", outputs.get("low_confidence", False)))


def recorded_call(outputs: Mapping[str, Any]) -> str:
    """A recorded graded result's call (REFERABLE, NOT_REFERABLE or UNCERTAIN), as it was made."""
    if is_uncertain(outputs):
        return UNCERTAIN
    return REFERABLE if outputs.get("referable_dr") else NOT_REFERABLE


def close_call(probabilities: Mapping[str, float]) -> tuple[str, str] | None:
    """The top two classes when they are too close to tell apart, else None."""
    ranked = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
    if len(ranked) < 2 or ranked[0][1] - ranked[1][1] >= CLOSE_CALL_MARGIN:
        return None
    return ranked[0][0], ranked[1][0]


@dataclass(frozen=True)
class Decision:
    """An image result's one decision, which its page, the history and a printout lead with.

    `key` names its next step in the catalogue: a graded model's "referable" or
    "not_referable", a finding's label, or "uncertain".
    """

    key: str
    words: str
    probability: float | None  # of the decision itself, where it has one


def image_decision(spec: ModelSpec, outputs: Mapping[str, Any]) -> Decision:
    """A graded model answers its screening question (the referral call, or uncertain within its
    band); another gives its finding, unless uncertain or too close to call. Results recorded before
    the referral call had its band keep the call they were given, uncertain if they were flagged so."""
    if is_uncertain(outputs):
        return Decision(UNCERTAIN, UNCERTAIN_WORDS, None)
    if spec.referable_grade is not None:
        key = recorded_call(outputs)
        referable = outputs.get("referable_probability")
        # The probability shown beside a call is the call's own: "No referable DR" with P(grade >= 2)
        # beside it would read as the model's confidence in "no".
        own = None if referable is None else referable if key == REFERABLE else 1 - referable
        return Decision(key, spec.answer_words(key), own)
    pair = close_call(outputs.get("probabilities") or {})
    if pair:
        return Decision(UNCERTAIN, f"{pair[0]} or {pair[1]}: too close to call", None)
    return Decision(str(outputs.get("label")), str(outputs.get("label")), outputs.get("confidence"))


def urgent(spec: ModelSpec, outputs: Mapping[str, Any]) -> str:
    """The answer of a recorded image result that calls for action now (the catalogue's `urgent`: a
    finding, or a graded model's most likely grade), unless the result is uncertain; else ""."""
    if is_uncertain(outputs):
        return ""
    key = str(outputs.get("label")) if spec.referable_grade is not None else image_decision(spec, outputs).key
    return key if key in spec.urgent else ""


def referable_grades(referable_grade: int) -> str:
    """The grades the referral call weighs together, in words ("grade 2 or worse")."""
    return f"grade {referable_grade} or worse"


def referral_rule(outputs: Mapping[str, Any]) -> str:
    """The referral rule a graded result was decided by, as recorded, in words: a side the card never
    calls (no threshold reached its target on validation) is said to be so, not given as "> 99%"."""
    high, low = outputs.get("referable_threshold"), outputs.get("not_referable_below")
    if high is None:
        return ""
    if low is not None and low <= 0 and high >= 1:
        return "The model makes no referral call on its own: every photo goes to a human read"
    parts = [f"refers from {percent(high)}" if high < 1 else "never refers"]
    if low is not None:
        parts.append(f"does not refer under {percent(low)}" if low > 0 else "never rules referral out")
        if low < high:
            parts.append("leaves the probabilities between to a human read")
    return "The model " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def band_rows(not_referable_below: float, referable_threshold: float,
              referable_grade: int) -> list[tuple[str, str]]:
    """A graded model's band as the model card lists it, in the words of the result page."""
    rows = [(f"Referable when the probability of {referable_grades(referable_grade)} reaches",
             percent(referable_threshold)),
            ("Not referable when it is under", percent(not_referable_below))]
    return rows + ([("Between the two", UNCERTAIN_WORDS)] if not_referable_below < referable_threshold else [])


def finding_rule_row(uncertain_below: float) -> tuple[str, str]:
    """A finding's uncertain rule as the model card lists it."""
    return f"\u201c{UNCERTAIN_WORDS}\u201d when its most likely answer is under", percent(uncertain_below)
