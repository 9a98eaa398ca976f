"""Running and recording a prediction: registry -> runtime -> interpretation -> history record.

Views and the API call these with input a form or schema has already validated; this
module owns what a result means (risk bands, top factors, confidence, how much of the input
it rests on), deciding an image result by predictors.decision. The words a clinician reads
with a result are in predictors.caveats and predictors.presentation; reads of the history are
in predictors.selectors.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from django.db import transaction

from .decision import REFERABLE, UNCERTAIN, close_call, finding_uncertain, referable_score, referral_call
from .catalogue import SPECS
from .errors import HttpError
from .inputs import TABULAR_SCHEMAS
from .models import Prediction
from .serving import metrics
from .serving.registry import ModelUnavailable, get_loader

if TYPE_CHECKING:
    import numpy as np

    from .images.decode import DecodedImage

log = logging.getLogger(__name__)

RISK_BANDS = ((0.20, "low"), (0.50, "moderate"), (1.01, "high"))
TOP_FACTORS = 3


class OutsideDomain(HttpError, status=422, code="outside_domain"):
    """An upload further from the pictures the model was trained and validated on than its card
    allows: the model's figures say nothing about its answer there, so none is given."""

    def __init__(self, model: str, message: str):
        super().__init__(message)
        self.model = model
        self.message = message


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


@dataclass(frozen=True)
class ImageRefused:
    """A form's optional image that its model will not read (refused by the gate, its quality check,
    or as outside the validated domain): the form's estimate never uses the image, so it is made and
    recorded without it, and `reason` is kept with it to say why the image was not read."""

    model: str
    reason: str


def unknown_inputs(model: str, values: Mapping[str, Any]) -> list[str]:
    """Names of the schema's fields a submission left unknown, in form order."""
    return [f.name for f in TABULAR_SCHEMAS[model].fields if values.get(f.name) is None]


@dataclass(frozen=True)
class WhereItLooked:
    """An image model's activation map with the input it was computed on, kept in memory only for
    the response that answers the upload, and drawn (a few milliseconds) only when shown."""

    features: "np.ndarray"
    activation_map: "np.ndarray"
    spec: Mapping[str, Any]

    def jpeg(self) -> bytes:
        """For the result page, which says what the colours mean in HTML beside it."""
        from .images.activation_maps import overlay_jpeg

        return overlay_jpeg(self.features, self.activation_map, self.spec)

    def png(self) -> bytes:
        """For the API, with the colour scale's legend drawn beneath."""
        from .images.activation_maps import overlay_png

        return overlay_png(self.features, self.activation_map, self.spec)


@dataclass(frozen=True)
class Answer:
    """One model's answer to one request: what the history records and the API returns."""

    model: str
    version: str
    inputs: dict[str, Any]  # what the record keeps of the input (an image's hash and size, never its pixels)
    result: dict[str, Any]
    seconds: float
    where_it_looked: WhereItLooked | None = None  # image models only; never stored


def run_tabular(request: TabularRequest) -> Answer:
    """Only known inputs are named as factors: the model routes an unknown value down a
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
    return Answer(request.model, model.version, request.values, result, time.perf_counter() - started)


def run_image(request: ImageRequest) -> Answer:
    """An upload whose domain score passes the card's `domain.threshold` gets no answer at all
    (OutsideDomain): the model's figures say nothing about pictures unlike those it was fitted
    and validated on (training/domain.py). Otherwise the one decision an image result carries
    is made by predictors.decision with the thresholds of the model's card, chosen on its
    validation images (training/calibration.py): a finding's uncertain rule, or a graded model's
    referral call (`referable_dr` null when uncertain); the most likely single grade is reported
    beneath that call, and may point another way.
    """
    from .images.transform import model_input  # numpy + Pillow load with the first image, not at start-up

    started = time.perf_counter()
    model = get_loader().get(request.model)
    card = model.artifact.card
    decision, domain = card.get("decision"), card.get("domain")
    if not decision:  # a card from before the thresholds: no rule to answer by, so no answer
        raise ModelUnavailable(request.model, "its card has no decision thresholds (card key 'decision')")
    if not domain:  # nor without the limit of what it was validated on
        raise ModelUnavailable(request.model, "its card has no validated domain (card key 'domain')")
    spec = model.artifact.input_spec
    page = request.image.rectified_page() if spec.get("page") else None  # found once, by the gate
    features = model_input(request.image.image, spec, rectified_page=page)
    output = model.predict(features)
    if not output.domain_distance <= domain["threshold"]:  # a NaN distance is outside too
        log.info("%s upload outside the validated domain: distance %.1f over %.1f", request.model,
                 output.domain_distance, domain["threshold"])
        raise OutsideDomain(request.model, domain["message"])
    probabilities = output.probabilities
    labels = model.labels
    top = int(probabilities.argmax())
    rounded = {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)}
    result: dict[str, Any] = {
        "label": labels[top],
        "class_index": top,
        "confidence": round(float(probabilities[top]), 4),
        "probabilities": rounded,
        "close_call": close_call(rounded) is not None,
    }
    referable_grade = SPECS[request.model].referable_grade
    if referable_grade is None:
        result["uncertain"] = bool(finding_uncertain(probabilities[top], decision["uncertain_below"]))
        result["uncertain_below"] = decision["uncertain_below"]
    else:
        referable_probability = float(referable_score(probabilities, referable_grade))
        call = referral_call(referable_probability, decision["not_referable_below"], decision["referable_threshold"])
        result.update(grade=top, referable_probability=round(referable_probability, 4),
                      referable_threshold=decision["referable_threshold"],
                      not_referable_below=decision["not_referable_below"], uncertain=call == UNCERTAIN,
                      referable_dr=None if call == UNCERTAIN else call == REFERABLE)
    looked = WhereItLooked(features, output.activation_map, spec)
    return Answer(request.model, model.version, {"image": request.image.record()}, result,
                  time.perf_counter() - started, looked)


def predict(user, requests: list[TabularRequest | ImageRequest | ImageRefused], source: str,
            reference: str = "") -> Prediction:
    """Run one or more models for one submission and record them all, or none.

    The first request is the primary record; any further ones (the optional image on
    the diabetes and heart forms) are attached to it. An optional image its model will not read
    (ImageRefused, or outside its validated domain here) holds back nothing: the form's estimate,
    which never uses it, is recorded with the reason under `image_not_read`. Inference happens before the
    transaction opens, so a slow model never holds a database connection in a transaction.
    `reference` is the clinician's own case reference, kept on the primary record.
    The returned record carries `where_it_looked` (image model name -> WhereItLooked) for
    the response that answers this submission; it is never stored.
    """
    answers: list[Answer] = []
    refused: list[ImageRefused] = [r for r in requests if isinstance(r, ImageRefused)]
    for request in requests:
        if isinstance(request, ImageRefused):
            continue
        try:
            answer = run_tabular(request) if isinstance(request, TabularRequest) else run_image(request)
        except ModelUnavailable:
            metrics.observe(request.model, "unavailable")
            raise
        except OutsideDomain as exc:
            metrics.observe(request.model, "outside_domain")
            if not answers:  # the submission's own image: no answer at all
                raise
            refused.append(ImageRefused(request.model, exc.message))  # an optional one: the estimate stands
            continue
        metrics.observe(request.model, "ok", answer.seconds)
        answers.append(answer)
    for refusal in refused:
        answers[0].result["image_not_read"] = {"model": refusal.model, "reason": refusal.reason}
    with transaction.atomic():
        parent = None
        for answer in answers:
            record = Prediction.objects.create(
                user=user, model_name=answer.model, model_version=answer.version, inputs=answer.inputs,
                outputs=answer.result, latency_ms=round(answer.seconds * 1000, 2), source=source, parent=parent,
                reference="" if parent else reference)
            parent = parent or record
    log.info("prediction %s by %s: %s", parent.pk, user, ", ".join(answer.model for answer in answers))
    parent.where_it_looked = {answer.model: answer.where_it_looked for answer in answers if answer.where_it_looked}
    return parent
