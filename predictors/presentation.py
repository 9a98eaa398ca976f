"""What a clinician reads with a result: the caveats, and the result page's view models.

Computed from the stored record, never from flags saved with it, so results recorded
before a caveat existed get it too. Running a prediction is predictors.services.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .catalogue import HUMAN_READ, SPECS, ModelSpec
from .decision import UNCERTAIN_WORDS, is_uncertain, referral_rule
from .formatting import DISCLAIMER, DISCLAIMER_BODY, DISCLAIMER_HEAD, file_size, in_sentence, percent  # noqa: F401 (its users move next)
from .inputs import TABULAR_SCHEMAS
from .models import Prediction
from .serving.registry import ModelUnavailable, get_loader
from .services import CLOSE_CALL_MARGIN, ImageRequest, TabularRequest, close_call, unknown_inputs

if TYPE_CHECKING:
    from .images.decode import DecodedImage
    from .inputs.fields import DiagnosticThreshold

THUMBNAIL_SIDE = 320
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
    """What a clinician must read with this result before the number itself.

    Computed from the stored inputs and probabilities rather than flags saved with the
    record wherever it can be, so results recorded before a caveat existed get it too.
    """
    if record.model_name in TABULAR_SCHEMAS:
        return (_diagnostic_notes(record) + _population_notes(record) + _retinopathy_notes(record)
                + _coverage_notes(record))
    return _image_notes(SPECS[record.model_name], record.outputs)


def diagnostic_finding(record: Prediction) -> "DiagnosticThreshold | None":
    """The first of the schema's diagnostic thresholds this record's inputs meet, if any."""
    schema = TABULAR_SCHEMAS[record.model_name]
    return next((t for t in schema.diagnostic if isinstance(record.inputs.get(t.finding), (int, float))
                 and record.inputs[t.finding] >= t.at_least), None)


def _diagnostic_notes(record: Prediction) -> list[Note]:
    """A finding diagnostic on its own is said before the model's estimate, which it makes moot."""
    threshold = diagnostic_finding(record)
    if threshold is None:
        return []
    field = TABULAR_SCHEMAS[record.model_name].by_name[threshold.finding]
    return [Note("warning", f"{field.describe(record.inputs[threshold.finding])}: at the diagnostic threshold "
                            f"({threshold.criterion}; {threshold.source}). {threshold.meaning}",
                 f"{in_sentence(field.label)} at the diagnostic threshold")]


# The diabetes data's youngest patients were 21; an age under it is outside what the model saw.
PIMA_MIN_AGE = 21


def _population_notes(record: Prediction) -> list[Note]:
    """Who the model learnt from, where a result is easily read beyond them (the catalogue's `population`).

    Said with every result, so lists leave it out (no short form) unless the patient is
    plainly outside it.
    """
    population = SPECS[record.model_name].population
    if not population:
        return []
    age = record.inputs.get("age")
    if record.model_name == "diabetes" and isinstance(age, int) and age < PIMA_MIN_AGE:
        return [Note("warning", f"{population} At {age}, this patient is younger than anyone it learnt from.",
                     f"age {age}: younger than the training data")]
    return [Note("caution", population, "")]


def _retinopathy_notes(record: Prediction) -> list[Note]:
    """A diabetes risk beside a fundus photo that shows retinopathy: the risk question no longer applies.

    Diabetic retinopathy develops in people who already have diabetes, and the risk model
    is for people not known to have it; a five-year risk printed beside "Moderate NPDR"
    would read as a contradiction.
    """
    if record.model_name != "diabetes":
        return []
    for image in record.attachments.all():
        outputs = image.outputs
        graded = SPECS[image.model_name].referable_grade is not None
        if graded and (outputs.get("grade") or 0) >= 1 and not is_uncertain(outputs):
            return [Note("warning", f"The fundus photo reads as {outputs.get('label')}. Diabetic retinopathy occurs in "
                                    "people who already have diabetes, and this risk estimate is for people not "
                                    "known to have it: test for diabetes now (for example HbA1c or fasting glucose) "
                                    "rather than reading a five-year risk.",
                         "retinopathy on the photo: test for diabetes now")]
    return []


def _coverage_notes(record: Prediction) -> list[Note]:
    schema = TABULAR_SCHEMAS[record.model_name]
    unknown = unknown_inputs(record.model_name, record.inputs)
    if not unknown:
        return []
    total = len(schema.fields)
    known = total - len(unknown)
    names = ", ".join(in_sentence(schema.by_name[name].label) for name in unknown)
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
        return Decision("uncertain", UNCERTAIN_WORDS, None)
    if spec.referable_grade is not None:
        key = "referable" if outputs.get("referable_dr") else "not_referable"
        referable = outputs.get("referable_probability")
        # The probability shown beside a call is the call's own: "No referable DR" with P(grade >= 2)
        # beside it would read as the model's confidence in "no".
        own = None if referable is None else referable if key == "referable" else 1 - referable
        return Decision(key, spec.answer_words(key), own)
    pair = close_call(outputs.get("probabilities") or {})
    if pair:
        return Decision("uncertain", f"{pair[0]} or {pair[1]}: too close to call", None)
    return Decision(str(outputs.get("label")), str(outputs.get("label")), outputs.get("confidence"))


def next_step(record: Prediction) -> str:
    """What the result calls for next, from the catalogue, in clinical words (said with every result)."""
    spec, outputs = SPECS[record.model_name], record.outputs
    if spec.tabular:
        finding = diagnostic_finding(record)
        return finding.next_step if finding else spec.next_step(str(outputs.get("risk_band")))
    return spec.next_step(image_decision(spec, outputs).key) or HUMAN_READ


def _referable_disagreement(spec: ModelSpec, outputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """Plain words for a retina result whose most likely grade and referable call point different ways.

    The grade is the single most likely one; referral weighs grades 2 to 4 together. A
    photo split between several referable grades can be referable with a lower grade
    on top, and a top grade of 2 or worse can fall short of the threshold.
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


def thumbnail(image: "DecodedImage") -> str:
    """A small JPEG of the judged image as a data: URI, for the response that shows the result.

    Images are never stored; the thumbnail lives only in that one page.
    """
    from PIL import Image  # Pillow loads with the first image, not at start-up

    small = image.image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# What the model learnt that a clinician would not expect, said beside the factor it explains.
_CHEST_PAIN = ("Why chest pain can lower this estimate: the Cleveland patients were all referred for angiography, "
               "and among them those without chest pain (asymptomatic) had more coronary disease than those with "
               "anginal or other pain. The factors are what the model learnt from that group, not causes.")
FACTOR_CONTEXT = {("heart", "chest_pain_type", value, "lowered"): _CHEST_PAIN
                  for value in ("typical_angina", "atypical_angina", "non_anginal")}


@dataclass(frozen=True)
class ResultView:
    """One model's answer as the result page shows it."""

    record: Prediction
    title: str
    notes: list[Note]
    factors: list[dict[str, Any]]
    inputs: list[tuple[str, str]]
    close_call: tuple[str, str] | None
    factor_context: list[str]
    probabilities: list[tuple[str, float]]  # in the model's label order
    thumbnail: str | None
    next_step: str
    decision: Decision | None  # image models only
    referral_rule: str
    activation_map: str | None = None
    activation_caption: str = ""


# What the model input is made of, in the words of a caption: (input spec key, value) -> words.
INPUT_STEP_WORDS = {
    ("page", "straighten"): "the page straightened",
    ("crop", "field_of_view"): "cropped to the camera's round field",
    ("crop", "ecg_grid"): "cropped to the leads",
    ("light", "field_of_view"): "its light evened out",
    ("grid", "suppress_red"): "its red grid removed",
}


def activation_caption(input_spec: Mapping[str, Any]) -> str:
    """The activation map's caption, true of the model that drew it: how its input was made."""
    steps = [words for (key, value), words in INPUT_STEP_WORDS.items() if input_spec.get(key) == value]
    made = f" ({', '.join(steps)})" if steps else ""
    return ("Where the model looked: the image as the model was given it" + made + ", in grey, under a colour "
            "scale from dark purple (less of the evidence for its answer) to yellow (more). A pointer for your "
            "own read, not a finding.")


def result_views(record: Prediction, thumbnails: Mapping[int, str] | None = None,
                 activation_maps: Mapping[int, str] | None = None) -> list[ResultView]:
    """A submission's results, the form's first and its attached image's after it.

    `thumbnails` and `activation_maps` map a record's id to the data: URIs made while
    answering the upload; a result opened later from the history has neither, as the
    image was never kept.
    """
    views = []
    for item in [record, *record.attachments.all()]:
        schema = TABULAR_SCHEMAS.get(item.model_name)
        if schema:
            inputs = [(f.label, f.display(item.inputs.get(f.name))) for f in schema.fields]
        else:
            inputs = [("Image", _describe_image(item.inputs.get("image") or {}))]
        # Records made before unknown inputs were excluded may still name one as a factor.
        factors = [f for f in item.outputs.get("factors", []) if f.get("value") is not None]
        context = {FACTOR_CONTEXT.get((item.model_name, f.get("feature"), f.get("value"), f.get("direction")))
                   for f in factors}
        views.append(ResultView(
            record=item, title=SPECS[item.model_name].title, notes=result_notes(item), factors=factors,
            factor_context=sorted(text for text in context if text),
            probabilities=_in_label_order(item.model_name, item.outputs.get("probabilities") or {}),
            inputs=inputs, close_call=close_call(item.outputs.get("probabilities") or {}),
            next_step=next_step(item), referral_rule=referral_rule(item.outputs),
            decision=None if schema else image_decision(SPECS[item.model_name], item.outputs),
            thumbnail=(thumbnails or {}).get(item.pk), activation_map=(activation_maps or {}).get(item.pk),
            activation_caption=(_activation_caption_for(item.model_name)
                                if (activation_maps or {}).get(item.pk) else "")))
    return views


def _activation_caption_for(model: str) -> str:
    try:
        return activation_caption(get_loader().card(model).get("input") or {})
    except ModelUnavailable:
        return activation_caption({})


def _in_label_order(model: str, probabilities: Mapping[str, float]) -> list[tuple[str, float]]:
    """A result's class probabilities in its model's label order (grade 0 to 4, say).

    The stored mapping cannot give the order: PostgreSQL's jsonb keeps keys sorted its own
    way. The card's labels can; if the card cannot be read, or no longer names these
    classes, the most probable comes first.
    """
    try:
        labels = [str(label) for label in get_loader().card(model).get("labels", [])]
    except ModelUnavailable:
        labels = []
    if set(labels) != set(probabilities):
        labels = sorted(probabilities, key=probabilities.get, reverse=True)
    return [(label, probabilities[label]) for label in labels]


def _describe_image(image: Mapping[str, Any]) -> str:
    parts = [str(image["format"])] if image.get("format") else []
    if image.get("width") and image.get("height"):
        parts.append(f"{image['width']} × {image['height']} pixels")
    if image.get("bytes"):
        parts.append(file_size(image["bytes"]))
    return ", ".join(parts + ["not stored"])


def thumbnails_for(record: Prediction, requests: list[TabularRequest | ImageRequest]) -> dict[int, str]:
    """Thumbnails of a submission's images, by the id of the record that judged each one."""
    images = {r.model: r.image for r in requests if isinstance(r, ImageRequest)}
    return {item.pk: thumbnail(images[item.model_name])
            for item in [record, *record.attachments.all()] if item.model_name in images}


def activation_maps_for(record: Prediction) -> dict[int, str]:
    """Where each image model of a just-answered submission looked, drawn over what it was given,
    by the id of the record that judged the image."""
    from .images.activation_maps import data_uri

    looked = getattr(record, "where_it_looked", {})
    return {item.pk: data_uri(looked[item.model_name].png())
            for item in [record, *record.attachments.all()] if item.model_name in looked}


@dataclass(frozen=True)
class Summary:
    """One model's answer in a line, with its caveats in a few words, for the history and dashboard."""

    title: str
    text: str
    caveats: list[str]


def summaries(record: Prediction) -> list[Summary]:
    """A submission's answers in a line each ("72% · high risk", "Moderate NPDR · 64%"), the form's first.

    The caveats are the result page's notes in short, so a list never shows a number
    without what its page says must be read with it.
    """
    lines = []
    for item in [record, *record.attachments.all()]:
        outputs = item.outputs
        spec = SPECS[item.model_name]
        if outputs.get("probability") is not None:
            text = f"{percent(outputs['probability'])} · {outputs.get('risk_band')} risk"
        else:
            decision = image_decision(spec, outputs)
            text = decision.words
            if decision.probability is not None:
                text += f" · {percent(decision.probability)}"
            if spec.referable_grade is not None:
                text += f" · most likely grade {outputs.get('label')}"
        lines.append(Summary(title=item.get_model_name_display(), text=text,
                             caveats=[note.short for note in result_notes(item) if note.short]))
    return lines
