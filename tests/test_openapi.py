"""predictors/openapi.py: the API's document, public, true of the real answers, usable by generated clients."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from bench.harness import DIABETES, HEART

from .support import ecg_printout, post_image, post_json, sample

pytestmark = pytest.mark.django_db


def test_openapi_document_is_public_and_says_how_to_authenticate(artifacts, api_token):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = response.json()
    scheme = document["components"]["securitySchemes"]["token"]
    assert document["security"] == [{"token": []}, {"session": []}]
    # What a generated client sends for that scheme is accepted (issue 16 item 9: apiKey made
    # clients send the bare key, and "Bearer" got a 401).
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    client = Client()
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {api_token}").status_code == 200


def test_openapi_document_describes_the_real_responses(client, artifacts, api_token):
    import jsonschema

    document = client.get("/api/v1/openapi.json").json()
    assert set(document["paths"]) == {f"/api/v1/predict/{m}" for m in ("diabetes", "heart", "retina", "ecg")}
    components = document["components"]["schemas"]

    def check(instance, name):
        jsonschema.validate(instance, {**components[name], "components": {"schemas": components}})
        # Every field an answer carries is documented, so generated clients see all of it.
        assert set(instance) <= set(components[name]["properties"]), set(instance) - set(components[name]["properties"])

    check(DIABETES, "DiabetesInput")
    check(HEART, "HeartInput")
    check(post_json(client, "diabetes", DIABETES, api_token).json(), "TabularResult")
    check(post_json(client, "heart", HEART, api_token).json(), "TabularResult")
    check(post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token).json(), "RetinaResult")
    check(post_image(client, "ecg", ecg_printout(), api_token).json(), "ImageResult")
    check(post_json(client, "diabetes", {**DIABETES, "glucose": 9999}, api_token).json(), "Error")
    with pytest.raises(jsonschema.ValidationError):
        check({**DIABETES, "glucose": "high"}, "DiabetesInput")


@pytest.mark.slow
def test_openapi_declares_the_image_as_a_binary_file_part(strict_site):
    document = json.loads(strict_site.request("GET", "/api/v1/openapi.json")[1])
    content = document["paths"]["/api/v1/predict/retina"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert content["schema"]["properties"]["image"] == {"type": "string", "format": "binary",
                                                         "description": "The image file"}
    assert "image/png" in content["encoding"]["image"]["contentType"]
