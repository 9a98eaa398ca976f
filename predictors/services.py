"""Running a prediction: registry -> runtime -> interpretation -> history record.

Views and the API call these with input a form or schema has already validated; this
module owns what a result means (risk bands, top factors, referable DR, confidence,
how much of the input it rests on) and the caveats a clinician must read with it.
"""
from __future__ import annotations

import base64
import datetime
import io
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from django.db import transaction
from django.db.models import Q, QuerySet

from . import metrics
from .inputs import TABULAR_SCHEMAS
from .models import Prediction
from .registry import ModelUnavailable, get_loader

if TYPE_CHECKING:
    from .imaging import DecodedImage

log = logging.getLogger(__name__)

RISK_BANDS = ((0.20, "low"), (0.50, "moderate"), (1.01, "high"))
LOW_CONFIDENCE = 0.5  # top-class probability under which the result is flagged as uncertain
# Top two classes closer than this: a near coin-flip between them, however high the top one is.
CLOSE_CALL_MARGIN = 0.15
# Fewer than this share of a form's findings known: the estimate rests on too little to read plainly.
MOSTLY_UNKNOWN = 0.5
THUMBNAIL_SIDE = 320
REFERABLE_GRADE = 2
TOP_FACTORS = 3
DISCLAIMER = ("Demonstration model, not a medical device: not for diagnosis, treatment or triage. "
              "Image models were trained on synthetic images only.")


def risk_band(probability: float) -> str:
    return next(band for limit, band in RISK_BANDS if probability < limit)


@dataclass(frozen=True)
class TabularRequest:
    model: str
    values: dict[str, Any]  # validated by the model's schema


@dataclass(frozen=True)
class ImageRequest:
    model: str
    image: "DecodedImage"  # decoded and gated


def unknown_inputs(model: str, values: Mapping[str, Any]) -> list[str]:
    """Names of the schema's fields a submission left unknown, in form order."""
    return [f.name for f in TABULAR_SCHEMAS[model].fields if values.get(f.name) is None]


def close_call(probabilities: Mapping[str, float]) -> tuple[str, str] | None:
    """The top two classes when they are too close to tell apart, else None."""
    ranked = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
    if len(ranked) < 2 or ranked[0][1] - ranked[1][1] >= CLOSE_CALL_MARGIN:
        return None
    return ranked[0][0], ranked[1][0]


def run_tabular(request: TabularRequest) -> tuple[dict[str, Any], str, float]:
    """Returns (result fields, model version, seconds).

    Only known inputs are named as factors: the model routes an unknown value down a
    default branch, and "Glucose (not given) raised the risk" would blame a blank.
    """
    schema = TABULAR_SCHEMAS[request.model]
    started = time.perf_counter()
    model = get_loader().get(request.model)
    output = model.predict(schema.encode(request.values))
    known = {name: c for name, c in output.contributions.items() if request.values.get(name) is not None}
    ranked = sorted(known.items(), key=lambda kv: abs(kv[1]), reverse=True)
    factors = []
    for name, contribution in ranked[:TOP_FACTORS]:
        field = schema.by_name[name]
        direction = "raised" if contribution > 0 else "lowered"
        factors.append({"feature": name, "value": request.values.get(name), "contribution": round(contribution, 4),
                        "direction": direction, "text": f"{field.describe(request.values.get(name))} {direction} the risk"})
    result = {
        "probability": round(output.probability, 4),
        "risk_band": risk_band(output.probability),
        "outcome": schema.positive_label,
        "factors": factors,
        "inputs_known": len(schema.fields) - len(unknown_inputs(request.model, request.values)),
        "inputs_total": len(schema.fields),
    }
    return result, model.version, time.perf_counter() - started


def run_image(request: ImageRequest) -> tuple[dict[str, Any], str, float]:
    from .imaging import model_input  # numpy + Pillow load with the first image, not at start-up

    started = time.perf_counter()
    model = get_loader().get(request.model)
    probabilities = model.predict(model_input(request.image.image, model.artifact.input_spec))
    labels = model.labels
    top = int(probabilities.argmax())
    rounded = {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)}
    result: dict[str, Any] = {
        "label": labels[top],
        "class_index": top,
        "confidence": round(float(probabilities[top]), 4),
        "probabilities": rounded,
        "low_confidence": bool(probabilities[top] < LOW_CONFIDENCE),
        "close_call": close_call(rounded) is not None,
    }
    if request.model == "retina":
        result["grade"] = top
        result["referable_dr"] = top >= REFERABLE_GRADE
        result["referable_probability"] = round(float(probabilities[REFERABLE_GRADE:].sum()), 4)
    return result, model.version, time.perf_counter() - started


def predict(user, requests: list[TabularRequest | ImageRequest], source: str, reference: str = "") -> Prediction:
    """Run one or more models for one submission and record them all, or none.

    The first request is the primary record; any further ones (the optional image on
    the diabetes and heart forms) are attached to it. Inference happens before the
    transaction opens, so a slow model never holds a database connection in a transaction.
    `reference` is the clinician's own case reference, kept on the primary record.
    """
    answers = []
    for request in requests:
        runner = run_tabular if isinstance(request, TabularRequest) else run_image
        try:
            result, version, seconds = runner(request)
        except ModelUnavailable:
            metrics.observe(request.model, "unavailable")
            raise
        metrics.observe(request.model, "ok", seconds)
        inputs = request.values if isinstance(request, TabularRequest) else {"image": request.image.record()}
        answers.append((request.model, version, inputs, result, seconds))
    with transaction.atomic():
        parent = None
        for model_name, version, inputs, result, seconds in answers:
            record = Prediction.objects.create(
                user=user, model_name=model_name, model_version=version, inputs=inputs, outputs=result,
                latency_ms=round(seconds * 1000, 2), source=source, parent=parent,
                reference="" if parent else reference)
            parent = parent or record
    log.info("prediction %s by %s: %s", parent.pk, user, ", ".join(a[0] for a in answers))
    return parent


@dataclass(frozen=True)
class Note:
    """A caveat printed with a result; `level` is "caution" or "warning" (the stronger)."""

    level: str
    text: str


def result_notes(record: Prediction) -> list[Note]:
    """What a clinician must read with this result before the number itself.

    Computed from the stored inputs and probabilities rather than flags saved with the
    record, so results recorded before a caveat existed get it too.
    """
    if record.model_name in TABULAR_SCHEMAS:
        return _coverage_notes(record)
    return _confidence_notes(record.outputs.get("probabilities") or {})


def _coverage_notes(record: Prediction) -> list[Note]:
    schema = TABULAR_SCHEMAS[record.model_name]
    unknown = unknown_inputs(record.model_name, record.inputs)
    if not unknown:
        return []
    total = len(schema.fields)
    known = total - len(unknown)
    names = ", ".join(schema.by_name[name].label.lower() for name in unknown)
    if known < total * MOSTLY_UNKNOWN:
        return [Note("warning", f"Based on only {known} of {total} findings. Most findings are unknown "
                                f"({names}), so this estimate rests on little information: treat it as a rough "
                                f"indication at most, and add the missing findings if you have them.")]
    return [Note("caution", f"Based on {known} of {total} findings; unknown: {names}. Unknown findings "
                            f"are never listed as reasons, and each one makes the estimate less certain.")]


def _confidence_notes(probabilities: Mapping[str, float]) -> list[Note]:
    notes = []
    if probabilities and max(probabilities.values()) < LOW_CONFIDENCE:
        notes.append(Note("warning", f"Low confidence: no class reached {LOW_CONFIDENCE:.0%}. "
                                     "Treat this result as uncertain."))
    pair = close_call(probabilities)
    if pair:
        first, second = pair
        notes.append(Note("warning", f"Too close to call: {first} ({probabilities[first]:.0%}) and {second} "
                                     f"({probabilities[second]:.0%}) are within {CLOSE_CALL_MARGIN:.0%} of each "
                                     "other, so the model cannot tell them apart for this image."))
    return notes


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


@dataclass(frozen=True)
class ResultView:
    """One model's answer as the result page shows it."""

    record: Prediction
    title: str
    notes: list[Note]
    factors: list[dict[str, Any]]
    inputs: list[tuple[str, str]]
    close_call: tuple[str, str] | None
    thumbnail: str | None


def result_views(record: Prediction, thumbnails: Mapping[int, str] | None = None) -> list[ResultView]:
    """A submission's results, the form's first and its attached image's after it.

    `thumbnails` maps a record's id to the data: URI made while answering the upload;
    a result opened later from the history has none, as the image was never kept.
    """
    views = []
    for item in [record, *record.attachments.all()]:
        schema = TABULAR_SCHEMAS.get(item.model_name)
        if schema:
            inputs = [(f.label, f.display(item.inputs.get(f.name))) for f in schema.fields]
        else:
            inputs = [("Image", _describe_image(item.inputs.get("image") or {}))]
        views.append(ResultView(
            record=item, title=get_loader().spec(item.model_name).title, notes=result_notes(item),
            # Records made before unknown inputs were excluded may still name one as a factor.
            factors=[f for f in item.outputs.get("factors", []) if f.get("value") is not None],
            inputs=inputs, close_call=close_call(item.outputs.get("probabilities") or {}),
            thumbnail=(thumbnails or {}).get(item.pk)))
    return views


def _describe_image(image: Mapping[str, Any]) -> str:
    parts = [str(image["format"])] if image.get("format") else []
    if image.get("width") and image.get("height"):
        parts.append(f"{image['width']} × {image['height']} pixels")
    if image.get("bytes"):
        parts.append(f"{image['bytes'] / 1e6:.1f} MB")
    return ", ".join(parts + ["not stored"])


def thumbnails_for(record: Prediction, requests: list[TabularRequest | ImageRequest]) -> dict[int, str]:
    """Thumbnails of a submission's images, by the id of the record that judged each one."""
    images = {r.model: r.image for r in requests if isinstance(r, ImageRequest)}
    return {item.pk: thumbnail(images[item.model_name])
            for item in [record, *record.attachments.all()] if item.model_name in images}


def history(user, *, model: str | None = None, since: datetime.date | None = None,
            until: datetime.date | None = None, reference: str = "") -> QuerySet[Prediction]:
    """A clinician's submissions, newest first, with their attached results.

    Filtering by model finds a submission by its attached result too: the retinopathy
    grades include those made with a diabetes form. Dates are whole days in the site's
    time zone, both ends included.
    """
    records = Prediction.objects.filter(user=user, parent__isnull=True)
    if model:
        attached = Prediction.objects.filter(user=user, model_name=model, parent__isnull=False).values("parent_id")
        records = records.filter(Q(model_name=model) | Q(pk__in=attached))
    if since:
        records = records.filter(created__date__gte=since)
    if until:
        records = records.filter(created__date__lte=until)
    if reference:
        records = records.filter(reference__icontains=reference)
    return records.prefetch_related("attachments")
