"""What a clinician must read with a result before its number (predictors/caveats.py): the findings
it rests on and those it lacks, a referral call its top grade disagrees with, a photo that already
answers the form's question, who the model learnt from, and a finding diagnostic on its own.

Models here are scripted where the test is about a caveat, so each expectation is exact whatever a
trained model says.
"""
from __future__ import annotations

import pytest

from predictors.catalogue import SPECS

from .page_text import page_text
from .support import (DIABETES_FORM, SPARSE_HEART, ScriptedImage, ScriptedTabular, factors_on, next_step_on, notes_on,
                      post_json, retina_result, sample)

pytestmark = pytest.mark.django_db


# The findings a result rests on, and those it lacks.

def test_a_nearly_complete_form_gets_a_milder_note_and_a_complete_one_none(logged_in, scripted):
    scripted.setattr(ScriptedTabular, "contributions", {"glucose": 1.0, "age": 0.2})
    page = logged_in.post("/predict/diabetes/", DIABETES_FORM).content.decode()
    [(level, text)] = notes_on(page)
    assert level == "caution" and text.startswith("Based on 6 of 8 findings; unknown: triceps skinfold, insulin.")
    complete = {**DIABETES_FORM, "skin_thickness": "30", "insulin": "120"}
    assert notes_on(logged_in.post("/predict/diabetes/", complete).content.decode()) == []


def test_unknown_findings_are_named_as_the_form_writes_them(logged_in, scripted):
    page = logged_in.post("/predict/heart/", SPARSE_HEART).content.decode()
    [(_, text)] = notes_on(page)
    assert "fasting blood sugar > 120 mg/dL" in text and "resting ECG" in text and "mg/dl" not in text
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "bmi": ""}).content.decode()
    assert "unknown: triceps skinfold, insulin, BMI." in notes_on(page)[0][1]


# A graded answer whose top grade points another way; a photo that answers the form's question already.

@pytest.mark.parametrize("probabilities, note", [
    ([0.44, 0.0, 0.20, 0.18, 0.18], "Referable, although the most likely single grade is No DR: grades 2 to 4 "
                                    "together have 56%, which reaches the 50% referral threshold."),
    ([0.05, 0.05, 0.80, 0.05, 0.05], None),
    ([0.10, 0.55, 0.35, 0.0, 0.0], None),
    ([0.30, 0.0, 0.36, 0.34, 0.0], None),
])
def test_a_referral_call_the_top_grade_disagrees_with_says_so(logged_in, decided, probabilities, note):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    cautions = [text for level, text in notes_on(retina_result(logged_in)) if level == "caution"]
    assert len(cautions) == (1 if note else 0) and all(text.startswith(note) for text in cautions)


def test_retinopathy_beside_a_diabetes_risk_says_diabetes_is_likely_already_there(logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.01, 0.01, 0.96, 0.01, 0.01])
    data = {**DIABETES_FORM, "retina_image": sample("fundus", "retina.jpg").open("rb")}
    page = logged_in.post("/predict/diabetes/", data).content.decode()
    diabetes = page[:page.index("Diabetic retinopathy grade</h2>")]
    assert ("warning", "The fundus photo reads as Moderate NPDR. Diabetic retinopathy occurs in people who already "
            "have diabetes, and this risk estimate is for people not known to have it: test for diabetes now (for "
            "example HbA1c or fasting glucose) rather than reading a five-year risk.") in notes_on(diabetes)
    assert "retinopathy on the photo: test for diabetes now" in page_text(logged_in.get("/history/").content.decode())
    decided.setattr(ScriptedImage, "probabilities", [0.96, 0.01, 0.01, 0.01, 0.01])
    data = {**DIABETES_FORM, "retina_image": sample("fundus", "retina.jpg").open("rb")}
    assert "already have diabetes" not in logged_in.post("/predict/diabetes/", data).content.decode()


@pytest.mark.parametrize("age, level, ending", [("45", "caution", "its estimate is untested."),
                                                ("19", "warning", "At 19, this patient is younger than anyone it "
                                                                  "learnt from.")])
def test_diabetes_results_and_card_say_who_the_model_learnt_from(logged_in, artifacts, age, level, ending):
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "age": age}).content.decode()
    [(shown_level, text)] = [n for n in notes_on(page, population=True) if "Pima" in n[1]]
    assert shown_level == level and text.startswith("It learnt from Pima Indian women aged 21 or older")
    assert text.endswith(ending)
    card = page_text(logged_in.get("/models/diabetes/").content.decode())
    assert SPECS["diabetes"].population in " ".join(card.split())


# A finding diagnostic on its own comes before any estimate, and every result says what to do next.

def test_a_2_hour_glucose_at_or_above_the_diagnostic_threshold_replaces_the_risk_headline(logged_in, scripted,
                                                                                         api_token, client):
    """Issue 32: 250 mg/dL is "at or above 200", never "at the diagnostic threshold", and the risk estimate
    it makes moot follows only small and labelled as not applicable, on the page and in the history."""
    scripted.setattr(ScriptedTabular, "probability", 0.74)
    scripted.setattr(ScriptedTabular, "contributions", {"glucose": 1.0})
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": "250"}).content.decode()
    first_level, first = notes_on(page, population=True)[0]
    assert first_level == "warning" and first.startswith(
        "Glucose 250 mg/dL: at or above 200 mg/dL, which meets a diagnostic criterion (2-hour plasma glucose of "
        "200 mg/dL (11.1 mmol/L) or more during a 75 g oral glucose tolerance test; American Diabetes Association, "
        "Standards of Care in Diabetes")
    assert page.index(first) < page.index('data-testid="probability"')
    text = " ".join(page_text(page).split())
    assert "Meets a diagnostic criterion: the risk estimate does not apply" in text
    assert "at the diagnostic threshold" not in text
    assert 'class="big" data-testid="probability"' not in page and "high risk" not in text
    assert "Not applicable, so not to be read as a risk" in text and factors_on(page) == []
    assert next_step_on(page).startswith("Next step: Confirm the diagnosis as the ADA criteria ask")
    history = " ".join(page_text(logged_in.get("/history/").content.decode()).split())
    assert ("Diabetes risk: Meets a diagnostic criterion: the risk estimate does not apply (glucose at or above "
            "200 mg/dL") in history
    assert "at the diagnostic threshold" not in history and "74%" not in history
    answer = post_json(client, "diabetes", {"pregnancies": 2, "glucose": 250, "blood_pressure": 72, "bmi": 35.1,
                                            "diabetes_pedigree": 0.52, "age": 45}, api_token).json()
    assert answer["next_step"].startswith("Confirm the diagnosis")
    below = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": "199"}).content.decode()
    assert "diagnostic threshold" not in below
    assert next_step_on(below).startswith("Next step: An estimate, not a diagnosis: test for diabetes")


def test_the_diabetes_card_names_the_source_of_its_diagnostic_threshold(logged_in, artifacts):
    text = " ".join(page_text(logged_in.get("/models/diabetes/").content.decode()).split())
    assert ("2-hour plasma glucose of 200 mg/dL (11.1 mmol/L) or more during a 75 g oral glucose tolerance test "
            "(American Diabetes Association, Standards of Care in Diabetes, section 2") in text
