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


# Glucose in the unit the laboratory reports: mg/dL or mmol/L, converted once (issue 32 item 4).

@pytest.mark.django_db
def test_glucose_in_mmol_per_litre_is_converted_once_and_the_record_says_what_was_entered(logged_in, artifacts):
    page = logged_in.get("/predict/diabetes/").content.decode()
    assert '<option value="mmol/L">mmol/L</option>' in page and 'name="glucose_unit"' in page
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": "7,8", "glucose_unit": "mmol/L"})
    assert response.status_code == 200
    record = Prediction.objects.get()
    assert record.inputs["glucose"] == 140.5  # 7.8 x 18.016 = 140.52, to one decimal
    assert record.inputs["as_entered"] == {"glucose": {"value": 7.8, "unit": "mmol/L"}}
    assert "7.8 mmol/L (140.5 mg/dL)" in response.content.decode()
    assert "7.8 mmol/L (140.5 mg/dL)" in logged_in.get(f"/history/{record.pk}/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("typed, unit, message", [
    ("30", "mmol/L", "Enter a value between 2.2 and 22.2 mmol/L."),
    ("1", "mmol/L", "Enter a value between 2.2 and 22.2 mmol/L."),
    ("7.8", "mg/dL", "Enter a value between 40 and 400 mg/dL."),
    ("140", "mmol/L", "Enter a value between 2.2 and 22.2 mmol/L."),
])
def test_glucose_ranges_are_checked_in_the_unit_chosen(logged_in, artifacts, typed, unit, message):
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": typed, "glucose_unit": unit})
    assert response.status_code == 400 and message in response.content.decode()
    assert 'value="mmol/L" selected' in response.content.decode() or unit == "mg/dL"  # the unit stays chosen
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
def test_the_api_takes_an_optional_glucose_unit_and_mg_per_dl_without_one(client, api_token, artifacts):
    def post(body):
        return client.post("/api/v1/predict/diabetes", json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {api_token}")

    body = API_BODIES["diabetes"]
    as_mg = post({**body, "glucose": 140.5}).json()
    as_mmol = post({**body, "glucose": 7.8, "glucose_unit": "mmol/L"}).json()
    assert as_mmol["probability"] == as_mg["probability"]
    assert Prediction.objects.get(pk=as_mmol["prediction_id"]).inputs["as_entered"]["glucose"] == {
        "value": 7.8, "unit": "mmol/L"}
    refused = post({**body, "glucose": 7.8})  # an existing client's number is mg/dL, as before
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {"glucose": ["Enter a value between 40 and 400 mg/dL."]}
    assert post({**body, "glucose_unit": "mmol"}).json()["error"]["fields"] == {
        "glucose_unit": ["Choose one of: mg/dL, mmol/L."]}
    assert post({**body, "glucose_unit": 1}).status_code == 400
    heart = client.post("/api/v1/predict/heart", json.dumps({**API_BODIES["heart"], "glucose_unit": "mmol/L"}),
                        content_type="application/json", HTTP_AUTHORIZATION=f"Token {api_token}")
    assert heart.json()["error"]["fields"] == {"glucose_unit": ["Unknown field."]}  # the diabetes body's only


def test_a_millimole_of_glucose_is_18_016_mg_per_dl_written_once():
    from predictors.inputs.diabetes import GLUCOSE_MG_PER_DL_PER_MMOL_PER_L

    glucose = TABULAR_SCHEMAS["diabetes"].by_name["glucose"]
    assert GLUCOSE_MG_PER_DL_PER_MMOL_PER_L == Decimal("18.016")
    assert glucose.to_own_unit(Decimal("10"), "mmol/L") == Decimal("180.2")
    assert glucose.range_in("mmol/L") == (2.2, 22.2)


# The diabetes pedigree function: a score no clinic computes, so it may be left unknown.

def test_an_unknown_pedigree_is_given_the_pima_median_which_its_trees_learnt_from():
    from predictors.training.tabular_data import load_pima

    features, _ = load_pima()
    pedigree = TABULAR_SCHEMAS["diabetes"].by_name["diabetes_pedigree"]
    assert not pedigree.required and features["diabetes_pedigree"].isna().sum() == 0
    assert pedigree.unknown_as == features["diabetes_pedigree"].median()
    row = TABULAR_SCHEMAS["diabetes"].encode({"pregnancies": 1, "age": 40})
    assert row[TABULAR_SCHEMAS["diabetes"].feature_names.index("diabetes_pedigree")] == pedigree.unknown_as
