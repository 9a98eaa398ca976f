"""The OpenAPI 3.1 document of the JSON API, built from the same schemas that validate it."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .inputs import TABULAR_SCHEMAS
from .inputs.fields import BooleanField, ChoiceField, NumberField, TabularSchema
from .catalogue import IMAGE_FORMATS, MODEL_SPECS, ModelSpec
from .errors import STATUSES
from .decision import CLOSE_CALL_MARGIN, NEEDS_HUMAN_READ

IMAGE_CONTENT_TYPES = ", ".join(dict.fromkeys(IMAGE_FORMATS.values()))
# Every status the API can answer, as predictors.errors.STATUSES describes it.
ERROR_STATUSES = {str(status): known.meaning for status, known in STATUSES.items() if known.api}


def _property(field) -> dict[str, Any]:
    nullable = not field.required
    if isinstance(field, NumberField):
        prop: dict[str, Any] = {"type": ["integer" if field.integer else "number"] + (["null"] if nullable else []),
                                "minimum": field.minimum, "maximum": field.maximum}
        if field.unit:
            prop["description"] = f"{field.label} ({field.unit}). {field.help}".strip()
    elif isinstance(field, ChoiceField):
        prop = {"enum": list(field.values) + ([None] if nullable else [])}
    elif isinstance(field, BooleanField):
        prop = {"type": ["boolean", "null"] if nullable else "boolean"}
    else:
        raise TypeError(type(field).__name__)
    prop.setdefault("description", f"{field.label}. {field.help}".strip())
    return prop


def _tabular_schema(schema: TabularSchema) -> dict[str, Any]:
    """A field that may be entered in other units takes a `<name>_unit` beside it; its range is the
    chosen unit's (an `if`/`then` per other unit), so 7.8 with "mmol/L" is valid and 7.8 alone is not."""
    properties = {f.name: _property(f) for f in schema.fields}
    conditions = []
    for f in schema.fields:
        if isinstance(f, NumberField) and f.units:
            properties[f.unit_field] = {
                "enum": list(f.unit_names), "default": f.unit,
                "description": f"The unit `{f.name}` is given in; {f.unit} if absent. The number is converted to "
                               f"{f.unit} once, and its range checked in the unit given"}
            properties[f.name]["description"] += f" In `{f.unit_field}`; {f.unit} by default."
            others = [unit.name for unit in f.units]
            conditions.append({"if": {"required": [f.unit_field], "properties": {f.unit_field: {"enum": others}}},
                               "else": {"properties": {f.name: {"minimum": f.minimum, "maximum": f.maximum}}}})
            for unit in others:
                low, high = f.range_in(unit)
                conditions.append({"if": {"required": [f.unit_field], "properties": {f.unit_field: {"const": unit}}},
                                   "then": {"properties": {f.name: {"minimum": low, "maximum": high}}}})
            del properties[f.name]["minimum"], properties[f.name]["maximum"]
    document = {"type": "object", "additionalProperties": False,
                "required": [f.name for f in schema.fields if f.required], "properties": properties}
    return {**document, "allOf": conditions} if conditions else document


PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
# Fields only some responses carry: the activation map is sent when asked for.
OPTIONAL_FIELDS = {"activation_map_png"}


def build_document() -> dict[str, Any]:
    """The whole document: one path per model in the catalogue, one schema per result shape."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "HealthOracle API", "version": "1",
                 "description": "Demonstration models; not a medical device."},
        "paths": {f"/api/v1/predict/{spec.name}": {"post": _operation(spec)} for spec in MODEL_SPECS},
        "components": {"schemas": _schemas(), "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "`Authorization: Bearer <key>` (`Token <key>` is accepted too), a key made "
                                     "at /tokens/ (or with `bin/manage apitoken <username>` on the site's "
                                     "machine). HTTPS only where the site is."},
            "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}}},
        "security": [{"token": []}, {"session": []}],
    }


def _result_schema_name(spec: ModelSpec) -> str:
    if spec.tabular:
        return "TabularResult"
    return f"{spec.name.title()}Result" if spec.referable_grade is not None else "ImageResult"


def _operation(spec: ModelSpec) -> dict[str, Any]:
    errors = {code: {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
              for code, text in ERROR_STATUSES.items()}
    result = _result_schema_name(spec)
    return {
        "operationId": f"predict_{spec.name}", "summary": spec.title, "description": spec.needs,
        "parameters": [] if spec.tabular else [{
            "name": "activation_map", "in": "query", "required": False, "schema": {"enum": ["1", "true"]},
            "description": "Also return `activation_map_png`: where the model looked, drawn over its input"}],
        "requestBody": _request_body(spec),
        "responses": {"200": {"description": "The prediction, recorded in the clinician's history",
                              "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{result}"}}}},
                      **errors}}


def _request_body(spec: ModelSpec) -> dict[str, Any]:
    if spec.tabular:
        return {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{spec.name.title()}Input"}}}}
    # A file part: `format: binary` is what client generators turn into a file upload
    # (a bare contentMediaType makes them send a plain text field, which is refused).
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["image"],
                   "properties": {"image": {"type": "string", "format": "binary", "description": "The image file"}}},
        "encoding": {"image": {"contentType": IMAGE_CONTENT_TYPES}}}}}


def _schemas() -> dict[str, Any]:
    results = {"TabularResult": _tabular_fields(), "ImageResult": _image_fields(),
               **{_result_schema_name(spec): _graded_fields(spec) for spec in MODEL_SPECS
                  if spec.referable_grade is not None}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}}},
        **{name: {"type": "object", "required": [key for key in fields if key not in OPTIONAL_FIELDS],
                  "properties": fields, "additionalProperties": False}
           for name, fields in results.items()},
        **{f"{name.title()}Input": _tabular_schema(schema) for name, schema in TABULAR_SCHEMAS.items()},
    }


def _common_fields() -> dict[str, Any]:
    return {"prediction_id": {"type": "integer"}, "model": {"type": "string"}, "version": {"type": "string"},
            "next_step": {"type": "string", "description": "What this result calls for next, in clinical words, "
                          "never stronger than its evidence (the same sentence as the result page)"},
            "latency_ms": {"type": "number"}, "disclaimer": {"type": "string"}}


def _tabular_fields() -> dict[str, Any]:
    return {
        **_common_fields(), "probability": PROBABILITY,
        "risk_band": {"enum": ["low", "moderate", "high"]}, "outcome": {"type": "string"},
        "factors": {"type": "array", "items": {"type": "object", "required": ["feature", "direction", "text"], "properties": {
            "feature": {"type": "string"}, "value": {}, "contribution": {"type": "number"},
            "direction": {"enum": ["raised", "lowered"]}, "text": {"type": "string"}}}},
        "inputs_known": {"type": "integer", "minimum": 0, "description": "Findings given (not unknown)"},
        "inputs_total": {"type": "integer", "minimum": 1, "description": "Findings the model takes; the estimate "
                         "rests on `inputs_known` of them"}}


def _image_fields() -> dict[str, Any]:
    """A finding's result: its label, decided by its uncertain rule."""
    return {
        **_shared_image_fields(),
        "uncertain": {"type": "boolean", "description": f"Uncertain, {NEEDS_HUMAN_READ}: `confidence` is under "
                      "`uncertain_below`, a threshold chosen on the model's validation images (see its card). "
                      "Do not act on `label` when true."},
        "uncertain_below": {**PROBABILITY, "description": "The threshold `uncertain` was decided with"}}


def _shared_image_fields() -> dict[str, Any]:
    return {
        **_common_fields(), "label": {"type": "string", "description": "The most likely class"},
        "class_index": {"type": "integer"},
        "confidence": {**PROBABILITY, "description": "The most likely class's probability"},
        "probabilities": {"type": "object", "additionalProperties": PROBABILITY},
        "close_call": {"type": "boolean", "description": f"The two most likely classes are within "
                       f"{CLOSE_CALL_MARGIN * 100:.0f} percentage points of each other: the model cannot tell them "
                       "apart for this image"},
        "activation_map_png": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png",
                               "description": "Only when asked (`?activation_map=1`): the top class's activation map "
                                             "over the image as the model was given it (cropped, straightened, "
                                             "normalised) in grey, in a colour scale with its legend beneath"}}


def _graded_fields(spec: ModelSpec) -> dict[str, Any]:
    """A graded screening model's result: the referral call, decided by its uncertain band, and the
    grade beneath it."""
    top, referable = len(spec.labels) - 1, spec.referable_grade
    return {
        **_shared_image_fields(), "grade": {"type": "integer", "minimum": 0, "maximum": top,
                                            "description": "The most likely single grade (= class_index), "
                                                           "reported beneath the referral call"},
        "referable_probability": {**PROBABILITY, "description": f"P(grade >= {referable}): grades {referable} "
                                                               f"to {top} together"},
        "referable_threshold": {**PROBABILITY, "description": "Referable from this `referable_probability`, a "
                                "threshold chosen on validation images (see the model card)"},
        "not_referable_below": {**PROBABILITY, "description": "Not referable under this `referable_probability`; "
                                "between it and `referable_threshold` the call is uncertain (chosen on validation "
                                "images, see the model card)"},
        "uncertain": {"type": "boolean", "description": f"Uncertain, {NEEDS_HUMAN_READ}: `referable_probability` "
                      "lies between `not_referable_below` and `referable_threshold`"},
        "referable_dr": {"type": ["boolean", "null"], "description": "The answer: referable diabetic retinopathy "
                         "or not; null when `uncertain`. It may disagree with `grade`, the single most likely "
                         "grade"}}


@require_GET
def document(request: HttpRequest) -> JsonResponse:
    return JsonResponse(build_document())
