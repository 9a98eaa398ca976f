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
from .errors import HttpError
from .formatting import DISCLAIMER
from .http import api_user, error_response
from .inputs import TABULAR_SCHEMAS, InputInvalid, InputMalformed
from .models import Prediction

# A form's fields as JSON are a few hundred bytes; anything this big is not one.
MAX_JSON_BYTES = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def api_endpoint(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """POST only, authenticated; every HttpError the view raises (a bad input, a model that cannot
    load, an upload outside what the model was validated on) is answered in the API's error shape."""

    @csrf_exempt  # tokens need no CSRF; session requests are checked in api_user
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            if request.method != "POST":
                raise HttpError("Use POST.", status=405, code="method_not_allowed", headers={"Allow": "POST"})
            return view(request, api_user(request), *args, **kwargs)
        except HttpError as exc:
            return error_response(exc)

    return wrapper


def _prediction_response(record: Prediction, **extra: Any) -> JsonResponse:
    return JsonResponse({"prediction_id": record.pk, "model": record.model_name, "version": record.model_version,
                         **record.outputs, "next_step": presentation.next_step(record), "latency_ms": record.latency_ms,
                         "disclaimer": DISCLAIMER, **extra})


@api_endpoint
def predict_tabular(request: HttpRequest, user: Any, model: str) -> JsonResponse:
    if request.content_type != "application/json":
        raise HttpError("Send the fields as application/json.", status=415, code="unsupported_media_type")
    if len(request.body) > MAX_JSON_BYTES:
        raise HttpError(f"The JSON body is over {MAX_JSON_BYTES // 1024 // 1024} MB.", status=413,
                        code="request_too_large")
    try:
        payload = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise HttpError("The body is not valid JSON: it is nested too deeply.", status=400,
                        code="malformed_json") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(f"The body is not valid JSON: {exc}", status=400, code="malformed_json") from exc
    schema = TABULAR_SCHEMAS[model]
    try:
        values = schema.validate(schema.from_json(payload))
    except InputMalformed as exc:
        raise HttpError("Some fields are missing, unknown or of the wrong type.", status=400, code="invalid_fields",
                        fields=exc.errors) from exc
    except InputInvalid as exc:
        raise HttpError("Some values are outside what the model accepts.", status=422, code="out_of_range",
                        fields=exc.errors) from exc
    record = services.predict(user, [services.TabularRequest(model, values)], source="api")
    return _prediction_response(record)


@api_endpoint
def predict_image(request: HttpRequest, user: Any, model: str) -> JsonResponse:
    if not request.content_type.startswith("multipart/form-data"):
        raise HttpError("Upload the image as multipart/form-data, field `image`.", status=415,
                        code="unsupported_media_type")
    try:
        form = FORMS[model](data=request.POST, files=request.FILES)
    except MultiPartParserError as exc:
        raise HttpError(f"The multipart body cannot be read: {exc}", status=400, code="malformed_multipart") from exc
    if not form.is_valid():
        problems = form.errors.as_data().get("image", [])
        if not problems or problems[0].code == "required":
            raise HttpError("Attach the image as the multipart field `image`.", status=400, code="missing_image",
                            fields={"image": ["This field is required."]})
        problem = problems[0]
        raise HttpError(problem.messages[0], status=(problem.params or {}).get("status", 400),
                        code=problem.code or "invalid_image", fields={"image": problem.messages})
    try:
        record = services.predict(user, form.prediction_requests(), source="api")
    except services.OutsideDomain as exc:  # no finding, nothing recorded: the upload is the field at fault
        raise HttpError(exc.message, status=exc.status, code=exc.code, fields={"image": [exc.message]}) from exc
    extra = {}
    if request.GET.get("activation_map") in ("1", "true"):  # asked for: drawing it costs a few milliseconds
        extra["activation_map_png"] = base64.b64encode(record.where_it_looked[model].png()).decode("ascii")
    return _prediction_response(record, **extra)
