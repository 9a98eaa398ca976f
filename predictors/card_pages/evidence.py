"""What a card's own tables say about one answer, for the result page and the card page alike: the
highest probability its calibration bears out, how many test cases stood behind a class, and how often
its negative answer was wrong on the test set.

Each figure is read from the card the answer came from (never typed), so a retrained model with other
figures or other classes changes every sentence that quotes them; a card without the table leaves the
sentence out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..catalogue import ModelSpec
from ..formatting import percent
from .figures import TOO_FEW, share
from .reading import as_list, as_mapping, is_number, point_and_interval

# The splits a class's test figures are read from, the served graph's first.
TEST_SECTIONS = ("served", "test")


@dataclass(frozen=True)
class Ceiling:
    """The highest probability a model's validation images bear out: among the `images` it was most
    confident about (the top bins of its reliability table, at least TOO_FEW of them), it was right on
    `right`, at a stated confidence of `confidence` on average. A probability above `probability` is
    shown as "> `probability`", never higher."""

    probability: float
    right: int
    images: int
    confidence: float

    def words(self) -> str:
        return (f"It shows no probability above {percent(self.probability)}: of the {self.images} validation images "
                f"it was most confident about (on average {percent(self.confidence)}), it was right on {self.right}, "
                "so a higher figure would claim more than its validation images show.")


def ceiling(card: Mapping[str, Any]) -> Ceiling | None:
    """The card's ceiling (see Ceiling), from its calibrated reliability table; None without one."""
    bins = [as_mapping(b) for b in as_list(as_mapping(card.get("calibration")).get("reliability_after"))]
    bins = [b for b in bins if all(is_number(b.get(k)) for k in ("confidence", "accuracy", "images"))
            and b["images"] > 0]
    if not bins:
        return None
    images = right = stated = 0.0
    for row in sorted(bins, key=lambda b: b["confidence"], reverse=True):
        images += row["images"]
        right += row["accuracy"] * row["images"]
        stated += row["confidence"] * row["images"]
        if images >= TOO_FEW:
            break
    borne_out = min(stated / images, right / images)
    return Ceiling(math.floor(borne_out * 100 + 1e-9) / 100, round(right), int(images), stated / images)


def _test_section(card: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = as_mapping(card.get("metrics"))
    return next((as_mapping(metrics[k]) for k in TEST_SECTIONS if isinstance(metrics.get(k), Mapping)), {})


def _confusion(card: Mapping[str, Any]) -> list[list[float]]:
    """The test confusion matrix (rows the true class, columns the answer, in the card's label order)."""
    labels = as_list(card.get("labels"))
    rows = as_list(_test_section(card).get("confusion_matrix"))
    if len(rows) != len(labels) or not all(isinstance(r, list) and len(r) == len(labels)
                                           and all(is_number(n) for n in r) for r in rows):
        return []
    return rows


def class_test_cases(card: Mapping[str, Any], label: str) -> tuple[int, int | None] | None:
    """How many test cases of this class the card counts, and how many of them the model found (None if
    the card does not say); None when the card counts neither."""
    section = _test_section(card)
    support = as_mapping(section.get("support"))
    recall = point_and_interval(as_mapping(section.get("recall")).get(label))[0]
    if is_number(support.get(label)):
        images = int(support[label])
        return images, round(recall * images) if recall is not None and math.isfinite(recall) else None
    labels = [str(x) for x in as_list(card.get("labels"))]
    rows = _confusion(card)
    if not rows or label not in labels:
        return None
    row = rows[labels.index(label)]
    return int(sum(row)), int(row[labels.index(label)])


def few_cases_words(card: Mapping[str, Any], spec: ModelSpec, label: str) -> tuple[str, str] | None:
    """A class with under TOO_FEW test cases, said on a result that gives it (and its short form)."""
    counted = class_test_cases(card, label)
    if counted is None or counted[0] >= TOO_FEW:
        return None
    images, found = counted
    case = spec.case or "case"
    such = f"only {images} such {case}{'' if images == 1 else 's'}" if images else f"no such {case}s"
    text = f"{label}: its test set had {such}"
    if images and found is not None:
        text += f", of which it found {found}"
    return (text + ", too few to say how often the model is right about it.",
            f"{label}: only {images} in its test set")


@dataclass(frozen=True)
class Misses:
    """How often the model gave its negative answer to a test case that had the condition."""

    missed: int
    cases: int
    words: str


def negative_misses(card: Mapping[str, Any], spec: ModelSpec) -> Misses | None:
    """From the card's test figures: a graded model's referable cases its call missed (decision.test), or
    the cases of another class a finding model's most likely answer called negative (the test confusion
    matrix). None when the card lacks them or the model has no negative answer."""
    case = spec.case or "case"
    if not spec.negative:
        return None
    if spec.referable_grade is not None:
        test = as_mapping(as_mapping(card.get("decision")).get("test"))
        if not (all(is_number(test.get(k)) for k in ("referable_missed", "referable_eyes"))
                and test["referable_eyes"]):
            return None
        missed, cases = int(test["referable_missed"]), int(test["referable_eyes"])
        wanted = spec.answer_words("referable")
        return Misses(missed, cases, f"On its test photos it missed {_of(missed, cases)} {case}s with "
                                     f"{wanted[:1].lower() + wanted[1:]}{_about(missed, cases)}")
    labels = [str(x) for x in as_list(card.get("labels"))]
    rows = _confusion(card)
    if not rows or spec.negative not in labels:
        return None
    negative = labels.index(spec.negative)
    others = [row for index, row in enumerate(rows) if index != negative]
    missed, cases = int(sum(row[negative] for row in others)), int(sum(sum(row) for row in others))
    if not cases:
        return None
    return Misses(missed, cases, f"In its test set its most likely answer was {spec.negative} for "
                                 f"{_of(missed, cases)} {case}s with another finding{_about(missed, cases)}")


def _of(count: int, total: int) -> str:
    return f"{'none' if not count else count} of {total}" if total >= TOO_FEW else share(count, total)


def _about(count: int, total: int) -> str:
    """ ": about 1 in 5", where the cases bear a rate out."""
    if not count or total < TOO_FEW:
        return "."
    return f": about 1 in {round(total / count)}."
