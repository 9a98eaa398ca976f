"""A model card in a clinician's words: what it predicts, from what data, how well, where it fails.

Cards are written by training and grow new keys over time, so every read here is
defensive (reading.py): a missing key, or a value of an unexpected shape, leaves a line out
rather than failing the page. Everything the summary leaves out is one link away as JSON.
The figures and data are figures.py; how the model decides and what the benchmarks measured
through the site, measured.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..catalogue import ModelSpec
from ..decision import NEEDS_HUMAN_READ
from ..formatting import percent
from . import evidence, figures, measured
from .reading import as_list, as_mapping, as_text, as_texts, humanise

PLOT_CAPTIONS = {
    "roc": "ROC curve: true against false positive rate at every threshold.",
    "reliability": ("Reliability: the stated probability against how often it proved right (for an image model, "
                    "its most likely answer, before and after calibration); the diagonal is perfect."),
    "confusion": "Confusion matrix on the held-out test set: rows are the true class, columns the prediction.",
}


@dataclass
class CardSummary:
    task: str
    outputs: list[str]
    intended_use: str
    version: str
    created: str
    data: list[tuple[str, str]]  # on whom: what a clinician weighs the figures by
    data_details: list[tuple[str, str]]  # how the data were read and split: developer detail
    sections: list[figures.MetricSection]
    sites: list[dict[str, str]]
    limitations: list[str]
    attribution: list[str]
    plots: list[tuple[str, str]]
    decision: list[tuple[str, str]] = field(default_factory=list)
    calibration: list[tuple[str, str]] = field(default_factory=list)
    robustness: list[dict[str, str]] = field(default_factory=list)
    robustness_note: str = ""
    robustness_right: str = "Right"
    validated_on: str = ""
    domain: list[tuple[str, str]] = field(default_factory=list)
    domain_groups: list[dict[str, str]] = field(default_factory=list)
    domain_note: str = ""
    domain_confident: str = ""  # the probability the domain benchmark's confident findings start at
    # A graded model's third answer beside its two calls, as the card's "what it predicts" names it.
    uncertain_answer: str = f"uncertain ({NEEDS_HUMAN_READ})"
    next_steps: list[tuple[str, str]] = field(default_factory=list)  # the negative answer's with its miss rate
    trust: list[str] = field(default_factory=list)  # how far to trust it, for a clinician, from its own tables
    outside: str = ""  # what happens to an upload from outside its validated source, from the benchmark


def summarise(card: Mapping[str, Any], spec: ModelSpec) -> CardSummary:
    """The card of the model `spec` declares, in a clinician's words; the catalogue's own limitation
    (who the data were, `spec.population`) is listed first under "where it fails"."""
    metrics = as_mapping(card.get("metrics"))
    labels = [str(label) for label in as_list(card.get("labels"))]
    data = figures.data_rows(as_mapping(card.get("data")))
    domain = as_mapping(card.get("domain"))
    benchmark = as_mapping(domain.get("benchmark"))
    return CardSummary(
        task=as_text(card.get("task")),
        outputs=labels,
        intended_use=as_text(card.get("intended_use")),
        version=as_text(card.get("version")),
        created=as_text(card.get("created"))[:10],
        data=[row for key, row in data if key not in figures.DEVELOPER_DATA],
        data_details=[row for key, row in data if key in figures.DEVELOPER_DATA],
        sections=figures.metric_sections(metrics),
        sites=figures.sites(as_mapping(metrics.get("external_validation"))),
        limitations=[*([spec.population] if spec.population else []), *as_texts(card.get("limitations")),
                     *figures.derived_limitations(metrics, labels)],
        attribution=as_texts(card.get("attribution")),
        plots=[(str(key), PLOT_CAPTIONS.get(str(key), humanise(str(key)) + "."))
               for key in as_mapping(card.get("plots"))],
        decision=measured.decision_rows(as_mapping(card.get("decision")), spec.referable_grade),
        calibration=measured.calibration_rows(as_mapping(card.get("calibration"))),
        robustness=measured.robustness_rows(as_mapping(card.get("robustness"))),
        robustness_note=measured.robustness_note(as_mapping(card.get("robustness"))),
        # bench/capture_robustness.py judges a graded model by its referral call, not its grade
        robustness_right=("Referral call right" if "referable_threshold" in as_mapping(card.get("decision"))
                          else "Finding right"),
        validated_on=as_text(domain.get("validated_on")),
        domain=measured.domain_rows(domain),
        domain_groups=measured.domain_groups(benchmark),
        domain_note=measured.domain_note(benchmark),
        domain_confident=percent(measured.confident(benchmark)),
        next_steps=_next_steps(card, spec),
        trust=[text for text in (_ceiling_words(card), measured.confidently_wrong(as_mapping(card.get("robustness"))),
                                 figures.validation_gap(metrics)) if text],
        outside=measured.outside_words(benchmark),
    )


def _ceiling_words(card: Mapping[str, Any]) -> str:
    found = evidence.ceiling(card)
    return found.words() if found else ""


def _next_steps(card: Mapping[str, Any], spec: ModelSpec) -> list[tuple[str, str]]:
    """The catalogue's next steps as the card lists them, the negative answer's with how often it was
    wrong on the test set, as its results say it (presentation.next_step)."""
    misses = evidence.negative_misses(card, spec)
    rows = []
    for (key, _), (name, text) in zip(spec.next_steps, spec.next_step_rows):
        rows.append((name, f"{text} {misses.words}" if misses and key == spec.negative else text))
    return rows
