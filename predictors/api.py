"""JSON API: thin views over the schemas, the forms' image field and the services."""
from __future__ import annotations

import base64
import json
from functools import wraps
from typing import Any, Callable

from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from . import presentation, services
from .forms import FORMS
from .formatting import DISCLAIMER
from .http import api_user, error_response
from .inputs import TABULAR_SCHEMAS, InputInvalid, InputMalformed
from .models import Prediction
from .serving.registry import ModelUnavailable

# A form's fields as JSON are a few hundred bytes; anything this big is not one.
MAX_JSON_BYTES = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def api_endpoint(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """POST only, authenticated; a model that cannot load becomes a 503 with its reason, an upload
    outside what the model was validated on a 422 `outside_domain`."""

    @csrf_exempt  # tokens need no CSRF; session requests are checked in api_user
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if request.method != "POST":
            response = error_response(405, "method_not_allowed", "Use POST.")
            response["Allow"] = "POST"
            return response
        user, refusal = api_user(request)
        if refusal is not None:
            return refusal
        try:
            return view(request, user, *args, **kwargs)
        except ModelUnavailable as exc:
            response = error_response(503, "model_unavailable", f"The {exc.name} model is unavailable: {exc.reason}")
            response["Retry-After"] = exc.retry_after
            return response
        except services.OutsideDomain as exc:  # no finding: nothing was recorded
            return error_response(422, "outside_domain", exc.message, {"image": [exc.message]})

    return wrapper


def _prediction_response(record: Prediction, **extra: Any) -> JsonResponse:
    return JsonResponse({"prediction_id": record.pk, "model": record.model_name, "version": record.model_version,
                         **record.outputs, "next_step": presentation.next_step(record), "latency_ms": record.latency_ms,
                         "disclaimer": DISCLAIMER, **extra})


@api_endpoint
def predict_tabular(request: HttpRequest, user: Any, model: str) -> JsonResponse:
    if request.content_type != "application/json":
        return error_response(415, "unsupported_media_type", "Send the fields as application/json.")
    if len(request.body) > MAX_JSON_BYTES:
        return error_response(413, "request_too_large", f"The JSON body is over {MAX_JSON_BYTES // 1024 // 1024} MB.")
    try:
        payload = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        return error_response(400, "malformed_json", "The body is not valid JSON: it is nested too deeply.")
    except (UnicodeDecodeError, ValueError) as exc:
        return error_response(400, "malformed_json", f"The body is not valid JSON: {exc}")
    schema = TABULAR_SCHEMAS[model]
    try:
        values = schema.validate(schema.from_json(payload))
    except InputMalformed as exc:
        return error_response(400, "invalid_fields", "Some fields are missing, unknown or of the wrong type.", exc.errors)
    except InputInvalid as exc:
        return error_response(422, "out_of_range", "Some values are outside what the model accepts.", exc.errors)
    record = services.predict(user, [services.TabularRequest(model, values)], source="api")
    return _prediction_response(record)


@api_endpoint
def predict_image(request: HttpRequest, user: Any, model: str) -> JsonResponse:
    if not request.content_type.startswith("multipart/form-data"):
        return error_response(415, "unsupported_media_type", "Upload the image as multipart/form-data, field `image`.")
    try:
        form = FORMS[model](data=request.POST, files=request.FILES)
    except MultiPartParserError as exc:
        return error_response(400, "malformed_multipart", f"The multipart body cannot be read: {exc}")
    if not form.is_valid():
        problems = form.errors.as_data().get("image", [])
        if not problems or problems[0].code == "required":
            return error_response(400, "missing_image", "Attach the image as the multipart field `image`.",
                                  {"image": ["This field is required."]})
        problem = problems[0]
        status = (problem.params or {}).get("status", 400)
        return error_response(status, problem.code or "invalid_image", problem.messages[0],
                              {"image": problem.messages})
    record = services.predict(user, form.prediction_requests(), source="api")
    extra = {}
    if request.GET.get("activation_map") in ("1", "true"):  # asked for: drawing it costs a few milliseconds
        extra["activation_map_png"] = base64.b64encode(record.where_it_looked[model].png()).decode("ascii")
    return _prediction_response(record, **extra)
