"""What a result says besides its number (predictors/presentation.py): the findings it rests on and
those it lacks, close calls, uncertain and referable image answers, the judged image shown once
and never kept, percentages without false certainty, and the same caveats in the history.

Models here are scripted where the test is about presentation (which factor is shown, when a
call is too close), so each expectation is exact whatever a trained model says.
"""
from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from predictors import presentation
from predictors.catalogue import SPECS
from predictors.models import Prediction

from .page_text import page_text
from .support import (DIABETES_FORM, SPARSE_HEART, ScriptedImage, ScriptedTabular, factors_on, named_upload, notes_on,
                      sample)

pytestmark = pytest.mark.django_db


# Missing inputs are never causes, and the result says what it rests on.

def test_unknown_findings_are_never_named_as_reasons(logged_in, scripted, api_token, client):
    # The unknown cholesterol and thallium test carry the largest contributions of all.
    scripted.setattr(ScriptedTabular, "contributions", {
        "age": 0.2, "sex": 0.05, "chest_pain_type": 0.6, "resting_bp": -0.1, "cholesterol": 2.5, "thal": -1.9,
        "fasting_blood_sugar_gt_120": 0.0, "resting_ecg": 0.0, "max_heart_rate": 1.2, "exercise_angina": 0.0,
        "st_depression": 0.9, "st_slope": 0.0, "major_vessels": 0.0})
    response = logged_in.post("/predict/heart/", SPARSE_HEART)
    assert response.status_code == 200
    page = response.content.decode()
    assert factors_on(page) == ["Chest pain type: Asymptomatic raised the risk", "Age 61 years raised the risk",
                                "Resting blood pressure 140 mm Hg lowered the risk"]
    assert "(not given)" not in page
    [(level, text)] = notes_on(page)
    assert level == "warning" and text.startswith("Based on only 4 of 13 findings.")
    assert "serum cholesterol" in text and "thallium stress test" in text
    body = client.post("/api/v1/predict/heart", json.dumps({"age": 61, "sex": "male", "chest_pain_type": "asymptomatic",
                                                             "resting_bp": 140}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Token {api_token}").json()
    assert [f["feature"] for f in body["factors"]] == ["chest_pain_type", "age", "resting_bp"]
    assert (body["inputs_known"], body["inputs_total"]) == (4, 13)


def test_a_nearly_complete_form_gets_a_milder_note_and_a_complete_one_none(logged_in, scripted):
    scripted.setattr(ScriptedTabular, "contributions", {"glucose": 1.0, "age": 0.2})
    page = logged_in.post("/predict/diabetes/", DIABETES_FORM).content.decode()
    [(level, text)] = notes_on(page)
    assert level == "caution" and text.startswith("Based on 6 of 8 findings; unknown: triceps skinfold, insulin.")
    complete = {**DIABETES_FORM, "skin_thickness": "30", "insulin": "120"}
    assert notes_on(logged_in.post("/predict/diabetes/", complete).content.decode()) == []


def test_records_made_before_the_fix_hide_their_blank_factors(logged_in, clinician):
    record = Prediction.objects.create(
        user=clinician, model_name="diabetes", model_version="old", latency_ms=1,
        inputs={**{k: None for k in DIABETES_FORM}, "pregnancies": 1, "diabetes_pedigree": 0.5, "age": 50},
        outputs={"probability": 0.3, "risk_band": "moderate", "outcome": "diabetes within five years", "factors": [
            {"feature": "glucose", "value": None, "direction": "raised", "text": "Glucose (not given) raised the risk"},
            {"feature": "age", "value": 50, "direction": "raised", "text": "Age 50 years raised the risk"}]})
    page = logged_in.get(f"/history/{record.pk}/").content.decode()
    assert factors_on(page) == ["Age 50 years raised the risk"]
    assert notes_on(page)[0][1].startswith("Based on only 3 of 8 findings.")


def test_unknown_findings_are_named_as_the_form_writes_them(logged_in, scripted):
    page = logged_in.post("/predict/heart/", SPARSE_HEART).content.decode()
    [(_, text)] = notes_on(page)
    assert "fasting blood sugar > 120 mg/dL" in text and "resting ECG" in text and "mg/dl" not in text
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "bmi": ""}).content.decode()
    assert "unknown: triceps skinfold, insulin, BMI." in notes_on(page)[0][1]


@pytest.mark.parametrize("pain, contribution, explained", [("typical_angina", -0.8, True),
                                                           ("non_anginal", -0.5, True),
                                                           ("asymptomatic", 0.9, False)])
def test_chest_pain_that_lowers_the_estimate_is_explained(logged_in, scripted, pain, contribution, explained):
    scripted.setattr(ScriptedTabular, "contributions", {"chest_pain_type": contribution, "age": 0.1})
    page = logged_in.post("/predict/heart/", {**SPARSE_HEART, "chest_pain_type": pain}).content.decode()
    assert ('data-testid="factor-context">Why chest pain can lower this estimate' in page) is explained


def test_inputs_are_listed_once_with_their_units(logged_in, artifacts):
    page = logged_in.post("/predict/heart/", SPARSE_HEART).content.decode()
    assert "<dt>Age</dt><dd>61 years</dd>" in page
    assert "<dt>Chest pain type</dt><dd>Asymptomatic</dd>" in page
    assert '<dt>Serum cholesterol</dt><dd class="unknown">Not given</dd>' in page
    assert "<dd>Age" not in page


# Near coin-flips are called what they are: an image result is "uncertain" under its card's
# threshold, and referable by P(grade >= 2), never by the top grade.

def retina_page(client) -> str:
    return client.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}).content.decode()


@pytest.mark.parametrize("probabilities, headline, notes, uncertain", [
    ([0.52, 0.45, 0.01, 0.01, 0.01], "Uncertain", ["Uncertain: needs a human read",
                                                   "Too close to call: No DR (52%) and Mild NPDR (45%) are within 15 "
                                                   "percentage points"], True),
    ([0.62, 0.50, 0.0, 0.0, 0.0], "No DR or Mild NPDR", ["Too close to call"], False),
    ([0.40, 0.20, 0.20, 0.10, 0.10], "Uncertain", ["Uncertain: needs a human read. The model is not sure enough of "
                                                   "this image (its most likely answer has 40%, under the 60% it needs "
                                                   "before it answers)."], True),
    ([0.90, 0.05, 0.03, 0.01, 0.01], "No DR", [], False),
])
def test_uncertain_answers_and_close_calls_are_flagged(logged_in, decided, api_token, client, probabilities,
                                                       headline, notes, uncertain):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    page = retina_page(logged_in)
    assert re.search(r'data-testid="label">([^<]+)<', page).group(1) == headline
    shown = notes_on(page)
    assert len(shown) == len(notes) and all(text.startswith(n) for (_, text), n in zip(shown, notes)), shown
    record = Prediction.objects.get()
    assert record.outputs["close_call"] is ("Too close" in " ".join(notes))
    assert record.outputs["uncertain"] is uncertain
    history = page_text(logged_in.get("/history/").content.decode())
    assert ("uncertain: needs a human read" in history) is uncertain
    answer = client.post("/api/v1/predict/retina", {"image": sample("fundus", "retina.jpg").open("rb")},
                         HTTP_AUTHORIZATION=f"Token {api_token}").json()
    assert answer["uncertain"] is uncertain and answer["uncertain_below"] == 0.6


@pytest.mark.parametrize("probabilities, referable, note", [
    # IDRiD_train_026 in issue 16: the top grade is No DR, but grades 2-4 together pass the threshold.
    ([0.44, 0.0, 0.20, 0.18, 0.18], True, "Referable, although the most likely single grade is No DR: grades 2 to 4 "
                                          "together have 56%, which reaches the 50% referral threshold."),
    ([0.58, 0.0, 0.42, 0.0, 0.0], False, None),
    ([0.05, 0.05, 0.80, 0.05, 0.05], True, None),
    ([0.10, 0.44, 0.46, 0.0, 0.0], False, "Not referable by the model's rule, although the most likely single grade "
                                          "is Moderate NPDR: grades 2 to 4 together have 46%, under the 50% referral "
                                          "threshold."),
])
def test_referable_follows_the_cards_threshold_and_says_when_the_grade_disagrees(logged_in, decided, probabilities,
                                                                                referable, note):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    page = retina_page(logged_in)
    line = " ".join(page_text(re.search(r'<p[^>]*data-testid="referable">.*?</p>', page, re.S).group(0)).split())
    together = sum(probabilities[2:])
    assert line == (f"Referable diabetic retinopathy (grade 2 or worse): {'yes' if referable else 'no'} "
                    f"({presentation.percent(together)} probability of grade 2 or worse; referable from 50%, a "
                    "threshold chosen on validation photos)")
    assert Prediction.objects.get().outputs["referable_dr"] is referable
    cautions = [text for level, text in notes_on(page) if level == "caution"]
    assert len(cautions) == (1 if note else 0) and all(text.startswith(note) for text in cautions)


def test_history_and_dashboard_carry_the_caveats_of_the_result_page(logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.52, 0.45, 0.01, 0.01, 0.01])
    decided.setattr(ScriptedTabular, "contributions", {"age": 0.3})
    assert logged_in.post("/predict/heart/", SPARSE_HEART).status_code == 200
    assert logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}).status_code == 200
    for path in ("/history/", "/"):
        text = " ".join(page_text(logged_in.get(path).content.decode()).split())
        assert "Heart disease risk: 90% · high risk (based on only 4 of 13 findings)" in text, path
        assert ("Diabetic retinopathy grade: No DR · 52% (uncertain: needs a human read; too close to call: "
                "No DR or Mild NPDR)") in text, path


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


# The judged image, shown once and never kept.

def test_result_shows_a_thumbnail_made_in_memory_and_never_stored(logged_in, artifacts):
    response = logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")})
    assert response.status_code == 200
    page = response.content.decode()
    record = Prediction.objects.get()
    encoded = re.search(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"[^>]*data-testid="thumbnail"', page).group(1)
    thumbnail = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 320
    assert f'data-result-url="/history/{record.pk}/"' in page  # reloading shows the record, not a re-post
    assert "base64" not in json.dumps(record.inputs) + json.dumps(record.outputs)
    later = logged_in.get(f"/history/{record.pk}/").content.decode()
    assert "data:image" not in later and "data-result-url" not in later
    assert "JPEG" in later and "not stored" in later


def test_the_result_page_shows_the_map_beside_the_thumbnail(logged_in, artifacts):
    response = logged_in.post("/predict/retina/", {"image": named_upload(sample("fundus", "retina.jpg").read_bytes())})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="activation-map"' in page and 'src="data:image/png;base64,' in page
    assert "Where the model looked" in page


# No model here is always right, so no page prints a certainty.

@pytest.mark.parametrize("probability, shown", [
    (0.9999, "> 99%"), (0.991, "> 99%"), (0.99, "99%"), (0.985, "99%"), (0.5, "50%"), (0.014, "1%"), (0.01, "1%"),
    (0.0099, "< 1%"), (0.0, "< 1%"), (1.0, "> 99%"),
])
def test_probabilities_are_shown_without_false_certainty(probability, shown):
    assert presentation.percent(probability) == shown


def test_result_and_history_pages_never_print_100_or_0_percent(logged_in, scripted):
    scripted.setattr(ScriptedImage, "probabilities", [0.0004, 0.0002, 0.0001, 0.0003, 0.999])
    scripted.setattr(ScriptedTabular, "probability", 0.9991)
    scripted.setattr(ScriptedTabular, "contributions", {"glucose": 1.0})
    pages = [logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}),
             logged_in.post("/predict/diabetes/", DIABETES_FORM)]
    pages = [page_text(p.content.decode()) for p in pages]
    pages += [page_text(logged_in.get(path).content.decode()) for path in ("/history/", "/")]
    for text in pages:
        assert not re.search(r"(?<![\d.])(100|0)\s?%", text), text
    retina, diabetes, history, dashboard = pages
    assert "> 99%" in retina and retina.count("< 1%") == 4  # the four unlikely grades
    assert "> 99%" in diabetes
    assert "Proliferative DR · > 99%" in history and "> 99% · high risk" in history
    assert "> 99% · high risk" in dashboard


@pytest.mark.parametrize("size, words", [(10485760, "10 MB"), (13_200_000, "12.6 MB"), (37_000, "37 kB"),
                                         (1_000_000, "977 kB"), (1, "1 kB")])
def test_sizes_are_given_in_the_unit_of_the_limit(size, words):
    assert presentation.file_size(size) == words
