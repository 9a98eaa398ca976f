"""What a clinician must read with a result before its number: the caveats, each a Note.

Recomputed from the stored inputs and probabilities wherever it can be, so results recorded
before a caveat existed get it too; only the image decision itself is read as recorded
(decision.is_uncertain), since its thresholds were those of the card of the version that
answered. The result page shows the notes in full, the history and dashboard in short.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from . import selectors
from .card_pages import evidence
from .catalogue import SPECS, ModelSpec
from .decision import CLOSE_CALL_MARGIN, UNCERTAIN, UNCERTAIN_WORDS, close_call, image_decision, is_uncertain
from .formatting import in_sentence, percent
from .inputs import TABULAR_SCHEMAS
from .models import Prediction
from .services import unknown_inputs

if TYPE_CHECKING:
    from .inputs.fields import DiagnosticThreshold

# What a result whose inputs meet a diagnostic finding leads with, on its page and in the lists.
DIAGNOSTIC_WORDS = "meets a diagnostic criterion"
DIAGNOSTIC_HEADLINE = f"{DIAGNOSTIC_WORDS[:1].upper()}{DIAGNOSTIC_WORDS[1:]}: the risk estimate does not apply"
# Fewer than this share of a form's findings known: the estimate rests on too little to read plainly.
MOSTLY_UNKNOWN = 0.5


@dataclass(frozen=True)
class Note:
    """A caveat printed with a result; `level` is "caution" or "warning" (the stronger).

    `short` is the same caveat in a few words, for the lists that show results in a line.
    """

    level: str
    text: str
    short: str


def result_notes(record: Prediction) -> list[Note]:
    """What a clinician must read with this result before the number itself."""
    if record.model_name in TABULAR_SCHEMAS:
        return (_diagnostic_notes(record) + _image_not_read_notes(record) + _read_separately_notes(record)
                + _population_notes(record) + _shown_on_image_notes(record) + _coverage_notes(record))
    spec = SPECS[record.model_name]
    return _image_notes(spec, record.outputs) + _few_cases_notes(spec, record)


def diagnostic_finding(record: Prediction) -> "DiagnosticThreshold | None":
    """The first of the schema's diagnostic thresholds this record's inputs meet, if any."""
    schema = TABULAR_SCHEMAS[record.model_name]
    return next((t for t in schema.diagnostic if isinstance(record.inputs.get(t.finding), (int, float))
                 and record.inputs[t.finding] >= t.at_least), None)


def _diagnostic_notes(record: Prediction) -> list[Note]:
    """A finding diagnostic on its own is said before the model's estimate, which it makes moot: "at or
    above" the threshold, never "at" it, for a value past it."""
    threshold = diagnostic_finding(record)
    if threshold is None:
        return []
    field = TABULAR_SCHEMAS[record.model_name].by_name[threshold.finding]
    at_or_above = f"at or above {field.display(threshold.at_least)}"
    return [Note("warning", f"{field.describe(record.inputs[threshold.finding])}: {at_or_above}, which "
                            f"{DIAGNOSTIC_WORDS} ({threshold.criterion}; {threshold.source}). {threshold.meaning}",
                 f"{in_sentence(field.label)} {at_or_above}")]


def _image_not_read_notes(record: Prediction) -> list[Note]:
    """An optional image its model would not read, said once: why, and that the estimate stands without
    it (it is made from the form alone; services.ImageRefused)."""
    refused = record.outputs.get("image_not_read")
    if not isinstance(refused, Mapping) or refused.get("model") not in SPECS:
        return []
    image = SPECS[refused["model"]]
    return [Note("caution", f"The {in_sentence(image.upload)} was not read: {refused.get('reason', '')} This "
                            "estimate is made from the form alone, so it stands without it.",
                 f"{in_sentence(image.upload)} not read")]


def _read_separately_notes(record: Prediction) -> list[Note]:
    """A form's own field for what its attached image shows (the catalogue's `image_not_read_into`) is
    a different reading from the image model's; the estimate takes it only as typed, and says so beside
    what the image model found, rather than leaving "unknown" beside a read ECG."""
    spec = SPECS[record.model_name]
    field_name = spec.image_not_read_into
    image = next((item for item in record.attachments.all() if item.model_name == spec.image_with), None)
    if not field_name or image is None:
        return []
    field = TABULAR_SCHEMAS[record.model_name].by_name[field_name]
    image_spec = SPECS[image.model_name]
    found = image_decision(image_spec, image.outputs).words
    choices = getattr(field, "choices", ())
    kinds = f" ({', '.join(in_sentence(c.label) for c in choices)})" if choices else ""
    typed = record.inputs.get(field_name)
    as_typed = "left blank here" if typed is None else f"typed here as {in_sentence(field.display(typed))}"
    return [Note("caution", f"The {in_sentence(image_spec.upload)} was read by the {image_spec.nav} model, which "
                            f"found: {found}. This estimate did not use it: it takes the "
                            f"{in_sentence(field.label)} only as typed on the form{kinds}, a different reading, "
                            f"{as_typed}.",
                 "")]


def _population_notes(record: Prediction) -> list[Note]:
    """Who the model learnt from, where a result is easily read beyond them (the catalogue's `population`).

    Said with every result, so lists leave it out (no short form) unless the patient is
    plainly outside it (younger than the catalogue's `min_age`).
    """
    spec = SPECS[record.model_name]
    if not spec.population:
        return []
    age = record.inputs.get("age")
    if spec.min_age is not None and isinstance(age, int) and age < spec.min_age:
        return [Note("warning", f"{spec.population} At {age}, this patient is younger than anyone it learnt from.",
                     f"age {age}: younger than the training data")]
    return [Note("caution", spec.population, "")]


def _shown_on_image_notes(record: Prediction) -> list[Note]:
    """A risk beside an attached image that already shows the disease: the risk question no longer applies.

    Diabetic retinopathy develops in people who already have diabetes, and the risk model
    is for people not known to have it; a five-year risk printed beside "Moderate NPDR"
    would read as a contradiction (the catalogue's `shown_on_image`).
    """
    said = SPECS[record.model_name].shown_on_image
    if not said:
        return []
    for image in record.attachments.all():
        outputs = image.outputs
        graded = SPECS[image.model_name].referable_grade is not None
        if graded and (outputs.get("grade") or 0) >= 1 and not is_uncertain(outputs):
            text, short = said
            return [Note("warning", text.format(label=outputs.get("label")), short)]
    return []


def _coverage_notes(record: Prediction) -> list[Note]:
    schema = TABULAR_SCHEMAS[record.model_name]
    unknown = unknown_inputs(record.model_name, record.inputs)
    if not unknown:
        return []
    total = len(schema.fields)
    known = total - len(unknown)
    spec = SPECS[record.model_name]
    read_separately = _read_separately_notes(record) and SPECS[spec.image_with]
    names = ", ".join(in_sentence(schema.by_name[name].label)
                      + (f" (not typed; the attached {in_sentence(read_separately.upload)} was read separately)"
                         if read_separately and name == spec.image_not_read_into else "")
                      for name in unknown)
    if known < total * MOSTLY_UNKNOWN:
        return [Note("warning", f"Based on only {known} of {total} findings. Most findings are unknown "
                                f"({names}), so this estimate rests on little information: treat it as a rough "
                                f"indication at most, and add the missing findings if you have them.",
                     f"based on only {known} of {total} findings")]
    return [Note("caution", f"Based on {known} of {total} findings; unknown: {names}. Unknown findings "
                            f"are never listed as reasons, and each one makes the estimate less certain.",
                 f"based on {known} of {total} findings")]


def _image_notes(spec: ModelSpec, outputs: Mapping[str, Any]) -> list[Note]:
    probabilities = outputs.get("probabilities") or {}
    notes = []
    if is_uncertain(outputs) and probabilities:
        notes.append(Note("warning", f"{UNCERTAIN_WORDS}. {_uncertain_reason(spec, outputs)}",
                          in_sentence(UNCERTAIN_WORDS)))
    pair = close_call(probabilities)
    if pair and spec.referable_grade is None:  # a graded model's grades are read beneath its referral call
        first, second = pair
        notes.append(Note("warning", f"Too close to call: {first} ({percent(probabilities[first])}) and {second} "
                                     f"({percent(probabilities[second])}) are within {CLOSE_CALL_MARGIN * 100:.0f} "
                                     "percentage points of each other, so the model cannot tell them apart for this image.",
                          f"too close to call: {first} or {second}"))
    disagreement = _referable_disagreement(spec, outputs) if spec.referable_grade is not None else None
    if disagreement and not is_uncertain(outputs):
        notes.append(Note("caution", *disagreement))
    return notes


def _few_cases_notes(spec: ModelSpec, record: Prediction) -> list[Note]:
    """A class with few test cases behind it, said on the result that gives it (the top class, or a graded
    model's most likely grade), with the count from the card of the served model."""
    label = record.outputs.get("label")
    if not label or image_decision(spec, record.outputs).key == UNCERTAIN and spec.referable_grade is None:
        return []  # no finding given, so none to qualify
    said = evidence.few_cases_words(selectors.served_card(record.model_name), spec, str(label))
    return [Note("caution", *said)] if said else []


def _uncertain_reason(spec: ModelSpec, outputs: Mapping[str, Any]) -> str:
    """Why the model does not answer, in the terms of its own rule (the card's, as recorded)."""
    probabilities = outputs.get("probabilities") or {}
    low, high = outputs.get("not_referable_below"), outputs.get("referable_threshold")
    if spec.referable_grade is not None and low is not None and high is not None:
        probability = percent(outputs.get("referable_probability") or 0.0)
        if low <= 0 and high >= 1:
            return (f"The probability of referable retinopathy is {probability}, but at no probability was either "
                    "call right often enough on validation photos.")
        band = (f"lies between {percent(low)} and {percent(high)}" if low > 0 and high < 1
                else f"is under {percent(high)}" if high < 1 else f"is {percent(low)} or more")
        return (f"The probability of referable retinopathy, {probability}, {band}, where neither call was right "
                "often enough on validation photos.")
    below = outputs.get("uncertain_below")
    rule = f", under the {percent(below)} it needs before it answers" if below is not None else ""
    return (f"The model is not sure enough of this image (its most likely answer has "
            f"{percent(max(probabilities.values()))}{rule}).")


def _referable_disagreement(spec: ModelSpec, outputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """Plain words for a graded result whose most likely grade and referable call point different ways.

    The grade is the single most likely one; referral weighs the referable grades together. A
    photo split between several referable grades can be referable with a lower grade
    on top, and a top grade at the referable one or worse can fall short of the threshold.
    """
    threshold, probability = outputs.get("referable_threshold"), outputs.get("referable_probability")
    grade, label = outputs.get("grade"), outputs.get("label")
    if threshold is None or probability is None or grade is None:
        return None
    referable_grade = spec.referable_grade
    together = f"grades {referable_grade} to {len(spec.labels) - 1} together have {percent(probability)}"
    if outputs.get("referable_dr") and grade < referable_grade:
        return (f"Referable, although the most likely single grade is {label}: {together}, which reaches the "
                f"{percent(threshold)} referral threshold. The referable grades share the probability between "
                "them, so together they outweigh the top grade.", f"referable although the top grade is {label}")
    if not outputs.get("referable_dr") and grade >= referable_grade:
        return (f"Not referable by the model's rule, although the most likely single grade is {label}: "
                f"{together}, under the {percent(threshold)} referral threshold.",
                f"not referable although the top grade is {label}")
    return None
