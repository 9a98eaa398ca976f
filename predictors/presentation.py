"""What a result means on a page: the result page's view models, and each result in a line for lists.

The caveats said with a result are predictors.caveats; the image decision and its words are
predictors.decision, read as recorded. Running a prediction is predictors.services.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import selectors
from .card_pages import evidence
from .catalogue import HUMAN_READ, SPECS
from .caveats import DIAGNOSTIC_HEADLINE, Note, diagnostic_finding, result_notes
from .decision import Decision, image_decision, referable_grades, referral_rule, urgent
from .formatting import file_size, in_sentence, percent
from .inputs import TABULAR_SCHEMAS
from .inputs.fields import AS_ENTERED
from .models import Prediction
from .services import ImageRequest, TabularRequest, close_call


def next_step(record: Prediction) -> str:
    """What the result calls for next, from the catalogue, in clinical words (said with every result): an
    urgent answer's own step first; a negative answer's with how often it was wrong on the test set."""
    spec, outputs = SPECS[record.model_name], record.outputs
    if spec.tabular:
        finding = diagnostic_finding(record)
        return finding.next_step if finding else spec.next_step(str(outputs.get("risk_band")))
    key = urgent(spec, outputs) or image_decision(spec, outputs).key
    step = spec.next_step(key) or HUMAN_READ
    misses = evidence.negative_misses(selectors.served_card(record.model_name), spec) if key == spec.negative else None
    return f"{step} {misses.words}" if misses else step


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
    referable_grades: str  # a graded model's: what its referable probability is of
    activation_map: "ActivationMap | None" = None
    activation_caption: str = ""
    # The highest probability its card bears out (card_pages.evidence.ceiling): none is shown higher.
    ceiling: float | None = None
    # A form's result whose inputs meet a diagnostic finding: what it leads with instead of the estimate.
    diagnostic: str = ""
    urgent: bool = False  # an image's answer that calls for action now: it leads the page


@dataclass(frozen=True)
class ActivationMap:
    """Where an image model looked, drawn (a data: URI), and said in words for its alt text; with its
    colour scale's legend, which the page draws in HTML: a gradient of `scale` ((offset, colour) stops)
    between the two `legend` words, text that a screen reader reads and a printer prints sharp."""

    uri: str
    alt: str
    scale: list[tuple[str, str]]
    legend: tuple[str, str]


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
                 activation_maps: Mapping[int, ActivationMap] | None = None) -> list[ResultView]:
    """A submission's results, the form's first and its attached image's after it.

    `thumbnails` (data: URIs) and `activation_maps` map a record's id to what was made while
    answering the upload; a result opened later from the history has neither, as the
    image was never kept.
    """
    views = []
    items = [record, *record.attachments.all()]
    for item in items:
        schema, spec = TABULAR_SCHEMAS.get(item.model_name), SPECS[item.model_name]
        if schema:
            inputs = [(f.label, _display_input(item, f, items)) for f in schema.fields]
        else:
            inputs = [("Image", _describe_image(item.inputs.get("image") or {}))]
        # Records made before unknown inputs were excluded may still name one as a factor.
        factors = [f for f in item.outputs.get("factors", []) if f.get("value") is not None]
        context = {c.text for c in (schema.factor_context if schema else ()) for f in factors if c.explains(f)}
        views.append(ResultView(
            record=item, title=spec.title, notes=result_notes(item), factors=factors,
            factor_context=sorted(context),
            probabilities=_in_label_order(selectors.served_labels(item.model_name),
                                          item.outputs.get("probabilities") or {}),
            inputs=inputs, close_call=close_call(item.outputs.get("probabilities") or {}),
            next_step=next_step(item), referral_rule=referral_rule(item.outputs),
            referable_grades=referable_grades(spec.referable_grade) if spec.referable_grade is not None else "",
            decision=None if schema else image_decision(spec, item.outputs),
            thumbnail=(thumbnails or {}).get(item.pk), activation_map=(activation_maps or {}).get(item.pk),
            activation_caption=(activation_caption(selectors.served_input(item.model_name))
                                if (activation_maps or {}).get(item.pk) else ""),
            ceiling=_ceiling(item.model_name),
            diagnostic=DIAGNOSTIC_HEADLINE if schema and diagnostic_finding(item) else "",
            urgent=not schema and bool(urgent(spec, item.outputs))))
    # An urgent finding on an attached image comes before the form's estimate: on a phone, the estimate
    # would otherwise push it two screens down.
    return sorted(views, key=lambda view: not view.urgent)


def _ceiling(model: str) -> float | None:
    found = evidence.ceiling(selectors.served_card(model))
    return found.probability if found else None


def _display_input(record: Prediction, field: Any, items: list[Prediction]) -> str:
    """An input as the result lists it; the form's field for what its attached image shows, left blank,
    says the image was read separately rather than "Not given" beside the image's own answer."""
    shown = _as_entered(field, record.inputs)
    spec = SPECS[record.model_name]
    if (record.inputs.get(field.name) is None and field.name == spec.image_not_read_into
            and any(item.model_name == spec.image_with for item in items)):
        return f"Not typed; the attached {in_sentence(SPECS[spec.image_with].upload)} was read separately"
    return shown


def images_not_kept(views: list[ResultView]) -> bool:
    """A result opened again whose image is gone: it was judged, and is not shown (never stored)."""
    return any(view.decision is not None and view.thumbnail is None for view in views)


def _as_entered(field, inputs: Mapping[str, Any]) -> str:
    """A finding as the record keeps it; one entered in another unit than the model's as it was
    entered, then as the model was given it ("7.8 mmol/L (140.5 mg/dL)")."""
    shown = field.display(inputs.get(field.name))
    entered = (inputs.get(AS_ENTERED) or {}).get(field.name)
    if entered and entered.get("unit") != field.unit:
        return f"{entered['value']:g} {entered['unit']} ({shown})"
    return shown


def _in_label_order(labels: list[str], probabilities: Mapping[str, float]) -> list[tuple[str, float]]:
    """A result's class probabilities in its model's label order (grade 0 to 4, say).

    The stored mapping cannot give the order: PostgreSQL's jsonb keeps keys sorted its own
    way. The served card's labels can; if the card cannot be read, or no longer names these
    classes, the most probable comes first.
    """
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
    from .images.thumbnail import thumbnail  # Pillow loads with the first image, not at start-up

    images = {r.model: r.image for r in requests if isinstance(r, ImageRequest)}
    return {item.pk: thumbnail(images[item.model_name])
            for item in [record, *record.attachments.all()] if item.model_name in images}


# What the model was given, as the map's alt text names it: by the input's crop.
PICTURE_WORDS = {"ecg_grid": "the printout's lead area", "field_of_view": "the photo"}


def activation_maps_for(record: Prediction) -> dict[int, ActivationMap]:
    """Where each image model of a just-answered submission looked, drawn over what it was given and
    said in words (the alt text says where, not what the colours are), by the id of the record that
    judged the image.

    Where on an ECG: the crop finds the printout's lead area, not where each lead lies in it
    (layouts differ: 3 by 4 with one or three rhythm strips, 6 by 2), so the words say where in
    that area, never which lead."""
    from .images.activation_maps import LEGEND_WORDS, data_uri, scale_stops, strongest_place

    looked = getattr(record, "where_it_looked", {})
    maps = {}
    for item in [record, *record.attachments.all()]:
        if item.model_name in looked:
            where = looked[item.model_name]
            picture = PICTURE_WORDS.get(str(where.spec.get("crop")), "the image")
            maps[item.pk] = ActivationMap(
                data_uri(where.jpeg()), f"Where the model looked, on {picture} as the model was given it: "
                                        f"strongest {strongest_place(where.activation_map)}.",
                scale_stops(), LEGEND_WORDS)
    return maps


@dataclass(frozen=True)
class Summary:
    """One model's answer in a line, with its caveats in a few words, for the history and dashboard.

    `flag` names, in words, an answer a clinic looks for again (the catalogue's `flags`): a
    referable eye, an MI.
    """

    title: str
    text: str
    caveats: list[str]
    flag: str = ""


def summaries(record: Prediction) -> list[Summary]:
    """A submission's answers in a line each ("72% · high risk", "Moderate NPDR · 64%"), the form's first.

    The caveats are the result page's notes in short, so a list never shows a number
    without what its page says must be read with it.
    """
    lines = []
    for item in [record, *record.attachments.all()]:
        outputs = item.outputs
        spec = SPECS[item.model_name]
        flag = ""
        if spec.tabular and diagnostic_finding(item):
            text = DIAGNOSTIC_HEADLINE
        elif outputs.get("probability") is not None:
            text = f"{percent(outputs['probability'])} · {outputs.get('risk_band')} risk"
        else:
            decision = image_decision(spec, outputs)
            flag = spec.flag(decision.key)
            text = decision.words
            if decision.probability is not None:
                text += f" · {percent(decision.probability, _ceiling(item.model_name))}"
            if spec.referable_grade is not None:
                text += f" · most likely grade {outputs.get('label')}"
        lines.append(Summary(title=item.get_model_name_display(), text=text, flag=flag,
                             caveats=[note.short for note in result_notes(item) if note.short]))
    return lines
