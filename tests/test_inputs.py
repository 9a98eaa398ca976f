"""Numbers as clinicians type them and as API clients send them: one parser, one range check."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from predictors.inputs import TABULAR_SCHEMAS
from predictors.inputs.fields import NumberField
from predictors.models import Prediction

from .support import DIABETES_FORM, HEART_FORM

NUMBER_FIELDS = [(model, f.name) for model, schema in TABULAR_SCHEMAS.items()
                 for f in schema.fields if isinstance(f, NumberField)]
FORMS = {"diabetes": DIABETES_FORM, "heart": HEART_FORM}
API_BODIES = {
    "diabetes": {"pregnancies": 2, "glucose": 168, "blood_pressure": 72, "bmi": 35.1, "diabetes_pedigree": 0.52,
                 "age": 45},
    "heart": {"age": 61, "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": 140,
              "st_depression": 2.0, "major_vessels": 1},
}
HUGE = "1" * 401


@pytest.mark.parametrize("text, expected", [
    ("0,5", Decimal("0.5")), ("31,5", Decimal("31.5")), (",5", Decimal("0.5")), ("0.5", Decimal("0.5")),
    (" 72 ", Decimal("72")), ("\u22121,5", Decimal("-1.5")), ("0,500", Decimal("0.5")), ("", None),
    (HUGE, Decimal(HUGE)),
])
def test_parse_reads_decimal_commas_as_decimals(text, expected):
    assert NumberField("x", "X", "", 0, 1).parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("1,000", "Type 1000 or 1.000"), ("12,345", "Type 12345 or 12.345"),
    ("1.000,5", "Enter a number"), ("1,2,3", "Enter a number"), ("1e400", "Enter a number"),
    ("nan", "Enter a number"), ("-inf", "Enter a number"), ("Infinity", "Enter a number"), ("12 mg", "Enter a number"),
    ("\u0661\u0662", "Enter a number"),  # Arabic-Indic digits: int() reads them, a clinician's form should not
])
def test_parse_refuses_what_it_would_have_to_guess(text, message):
    with pytest.raises(ValueError, match=message):
        NumberField("x", "X", "", 0, 1).parse(text)


@pytest.mark.django_db
@pytest.mark.parametrize("model, field, typed, stored", [
    ("heart", "st_depression", "0,5", 0.5),
    ("diabetes", "bmi", "31,5", 31.5),
    ("diabetes", "diabetes_pedigree", "0,627", 0.627),
])
def test_form_takes_a_decimal_comma_as_a_decimal(logged_in, artifacts, model, field, typed, stored):
    response = logged_in.post(f"/predict/{model}/", {**FORMS[model], field: typed})
    assert response.status_code == 200, response.content.decode()[:3000]
    assert Prediction.objects.get(parent__isnull=True).inputs[field] == stored


@pytest.mark.django_db
def test_form_refuses_an_ambiguous_comma_and_keeps_the_values(logged_in, artifacts):
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "insulin": "1,000"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Type 1000 or 1.000" in page and 'value="1,000"' in page and 'value="35.1"' in page
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
def test_number_inputs_are_text_with_a_number_pad(logged_in):
    """type=number lets Chromium drop a comma ("0,5" arrives as "05"); a text box sends what was typed."""
    page = logged_in.get("/predict/heart/").content.decode()
    assert 'type="number"' not in page
    assert '<input type="text" name="age" inputmode="numeric"' in page
    assert '<input type="text" name="resting_bp" inputmode="decimal"' in page
    # ST depression can be negative: phone number pads have no minus key.
    assert '<input type="text" name="st_depression" inputmode="text"' in page


@pytest.mark.django_db
@pytest.mark.parametrize("typed", [HUGE, "1e400", "nan", "inf"])
@pytest.mark.parametrize("model, field", NUMBER_FIELDS)
def test_every_form_number_refuses_overflowing_values(logged_in, model, field, typed):
    response = logged_in.post(f"/predict/{model}/", {**FORMS[model], field: typed})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Please correct the fields marked below" in page
    assert ("Enter a value between" in page) if typed == HUGE else ("Enter a number" in page)
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("raw, status, message", [
    (HUGE, 422, "Enter a value between"),
    ("-" + HUGE, 422, "Enter a value between"),
    ("1e400", 422, "Enter a finite number"),
    ('"nan"', 400, "Expected a number"),
    ('"inf"', 400, "Expected a number"),
    ('"0,5"', 400, "send 0.5 without quotes"),
])
@pytest.mark.parametrize("model, field", NUMBER_FIELDS)
def test_every_api_number_refuses_overflowing_values(client, api_token, model, field, raw, status, message):
    body = json.dumps({**API_BODIES[model], field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', raw)
    response = client.post(f"/api/v1/predict/{model}", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {api_token}")
    assert response.status_code == status
    assert message in " ".join(response.json()["error"]["fields"][field])
    assert Prediction.objects.count() == 0
