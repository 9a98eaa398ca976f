"""What a result page and the lists show (predictors/presentation.py): the factors and inputs a
result rests on, close calls, uncertain and referable image answers with their next step, the
judged image shown once and never kept, no page printing a certainty, and the same caveats in the
history. The caveats themselves are tests/test_caveats.py.

Models here are scripted where the test is about presentation (which factor is shown, when a
call is too close), so each expectation is exact whatever a trained model says.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from predictors import selectors
from predictors.catalogue import SPECS
from predictors.formatting import percent
from predictors.models import Prediction

from .page_text import page_text
from .support import (DIABETES_FORM, SPARSE_HEART, ScriptedImage, ScriptedTabular, ecg_printout, factors_on,
                      named_upload, next_step_on, notes_on, retina_result, rewrite_card, sample)

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


# One decision per image result, led by the clinical question: an ECG finding is "uncertain" under
# its card's threshold; the retina answers referable or not by P(grade >= 2) and its uncertain band,
# with the grade beneath, never by the top grade.

def ecg_page(client) -> str:
    return client.post("/predict/ecg/", {"image": named_upload(ecg_printout())}).content.decode()


def headline(page: str) -> str:
    return re.search(r'data-testid="label">([^<]+)<', page).group(1)


@pytest.mark.parametrize("probabilities, shown, notes, uncertain", [
    ([0.52, 0.45, 0.02, 0.01], "Uncertain: needs a human read",
     ["Uncertain: needs a human read", "Too close to call: Normal (52%) and Abnormal heartbeat (45%) are within 15 "
                                       "percentage points"], True),
    ([0.62, 0.50, 0.0, 0.0], "Normal or Abnormal heartbeat: too close to call", ["Too close to call"], False),
    ([0.40, 0.20, 0.20, 0.20], "Uncertain: needs a human read",
     ["Uncertain: needs a human read. The model is not sure enough of this image (its most likely answer has 40%, "
      "under the 60% it needs before it answers)."], True),
    ([0.90, 0.05, 0.03, 0.02], "Normal", [], False),
])
def test_an_ecg_finding_is_uncertain_under_its_cards_threshold(logged_in, decided, api_token, client, probabilities,
                                                                shown, notes, uncertain):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    page = ecg_page(logged_in)
    assert headline(page) == shown
    on_page = notes_on(page)
    assert len(on_page) == len(notes) and all(text.startswith(n) for (_, text), n in zip(on_page, notes)), on_page
    record = Prediction.objects.get()
    assert record.outputs["close_call"] is ("Too close" in " ".join(notes))
    assert record.outputs["uncertain"] is uncertain
    history = page_text(logged_in.get("/history/").content.decode())
    assert ("uncertain: needs a human read" in history) is uncertain
    answer = client.post("/api/v1/predict/ecg", {"image": named_upload(ecg_printout())},
                         HTTP_AUTHORIZATION=f"Token {api_token}").json()
    assert answer["uncertain"] is uncertain and answer["uncertain_below"] == 0.6


@pytest.mark.parametrize("probabilities, shown, referable, next_words", [
    # IDRiD_train_026 in issue 16: the top grade is No DR, but grades 2-4 together pass the threshold.
    ([0.44, 0.0, 0.20, 0.18, 0.18], "Referable diabetic retinopathy", True, "Refer to an ophthalmologist"),
    ([0.58, 0.0, 0.42, 0.0, 0.0], "Uncertain: needs a human read", None, "Have the photo graded"),
    ([0.05, 0.05, 0.80, 0.05, 0.05], "Referable diabetic retinopathy", True, "Refer to an ophthalmologist"),
    # The photo: a top grade under any threshold, yet referable by the call.
    ([0.02, 0.02, 0.30, 0.46, 0.20], "Referable diabetic retinopathy", True, "Refer to an ophthalmologist"),
    ([0.10, 0.55, 0.35, 0.0, 0.0], "No referable diabetic retinopathy", False, "No referral on this photo alone"),
])
def test_the_retina_answers_referable_or_not_with_its_band_and_the_grade_beneath(
        logged_in, decided, api_token, client, probabilities, shown, referable, next_words):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    page = retina_result(logged_in)
    assert headline(page) == shown
    assert next_step_on(page).startswith(f"Next step: {next_words}")
    grade = " ".join(page_text(re.search(r'<p[^>]*data-testid="grade">.*?</p>', page, re.S).group(0)).split())
    top = max(range(5), key=lambda i: probabilities[i])
    assert grade.startswith(f"Most likely single grade, beneath that call: {SPECS['retina'].labels[top]}")
    warnings = [text for level, text in notes_on(page) if level == "warning"]
    assert warnings == ([f"Uncertain: needs a human read. The probability of referable retinopathy, "
                         f"{percent(sum(probabilities[2:]))}, lies between 40% and 50%, where neither "
                         "call was right often enough on validation photos."] if referable is None else [])
    record = Prediction.objects.get()
    assert record.outputs["referable_dr"] is referable and record.outputs["uncertain"] is (referable is None)
    history = " ".join(page_text(logged_in.get("/history/").content.decode()).split())
    assert f"Diabetic retinopathy grade: {shown}" in history
    if referable is not None:  # beside a call, that call's own probability, never the other side's
        own = sum(probabilities[2:]) if referable else 1 - sum(probabilities[2:])
        assert f"{shown} {percent(own)} probability" in " ".join(page_text(page).split())
        assert f"{shown} · {percent(own)}" in history
    answer = client.post("/api/v1/predict/retina", {"image": sample("fundus", "retina.jpg").open("rb")},
                         HTTP_AUTHORIZATION=f"Token {api_token}").json()
    assert answer["referable_dr"] is referable and answer["uncertain"] is (referable is None)
    assert answer["next_step"].startswith(next_words) and "uncertain_below" not in answer


def test_history_and_dashboard_carry_the_caveats_of_the_result_page(logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.30, 0.25, 0.25, 0.10, 0.10])
    decided.setattr(ScriptedTabular, "contributions", {"age": 0.3})
    assert logged_in.post("/predict/heart/", SPARSE_HEART).status_code == 200
    assert logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}).status_code == 200
    for path in ("/history/", "/"):
        text = " ".join(page_text(logged_in.get(path).content.decode()).split())
        assert "Heart disease risk: 90% · high risk (based on only 4 of 13 findings)" in text, path
        assert ("Diabetic retinopathy grade: Uncertain: needs a human read · most likely grade No DR "
                "(uncertain: needs a human read)") in text, path


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


def test_a_result_page_reads_its_records_once(logged_in, artifacts):
    """The answering page's thumbnails, maps and results all go through the submission's records (a form
    and its attached photo here): one query reads them; the page reopened reads the clinician it names
    with the record, not after it."""
    def reads(queries: CaptureQueriesContext, table: str) -> int:
        return sum(q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"] for q in queries.captured_queries)

    with CaptureQueriesContext(connection) as answering:
        response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM,
                                                         "retina_image": sample("fundus", "retina.jpg").open("rb")})
    assert response.status_code == 200 and response.content.decode().count('data-testid="thumbnail"') == 1
    assert reads(answering, "predictors_prediction") == 1
    record = Prediction.objects.get(parent__isnull=True)
    with CaptureQueriesContext(connection) as reopened:
        page = logged_in.get(f"/history/{record.pk}/").content.decode()
    assert "Clinician: dr_ada" in page
    assert reads(reopened, "auth_user") == 1  # the session's user; the record's clinician is joined to the record


def test_the_result_page_shows_the_map_beside_the_thumbnail_with_its_legend_in_words(logged_in, artifacts):
    """The map is the model's input as it was given (384 px square for the retina), which the browser
    scales; what its colours mean is text under it, over a bar of the same scale."""
    response = logged_in.post("/predict/retina/", {"image": named_upload(sample("fundus", "retina.jpg").read_bytes())})
    assert response.status_code == 200
    page = response.content.decode()
    encoded = re.search(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"[^>]*data-testid="activation-map"',
                        page).group(1)
    drawn = Image.open(io.BytesIO(base64.b64decode(encoded)))
    served = selectors.served_input("retina")
    assert drawn.format == "JPEG" and drawn.size == (served["width"], served["height"])
    assert "Where the model looked" in page
    legend = re.search(r'<div class="map-legend" data-testid="map-legend">(.*?)</div>', page, re.S).group(1)
    assert page_text(legend).split() == ["less", "evidence", "more", "evidence"]
    stops = re.findall(r'<stop offset="([\d.]+%)" stop-color="(#[0-9a-f]{6})"/>', legend)
    assert stops[0] == ("0%", "#440154") and stops[-1] == ("100%", "#fde725"), "dark purple to yellow, as drawn"


def test_a_result_opened_again_says_at_the_top_that_its_image_and_map_were_not_kept(logged_in, artifacts):
    data = {**DIABETES_FORM, "retina_image": sample("fundus", "retina.jpg").open("rb")}
    answered = logged_in.post("/predict/diabetes/", data).content.decode()
    assert 'data-testid="not-kept"' not in answered  # shown with the answer: nothing is missing yet
    record = Prediction.objects.get(parent__isnull=True)
    later = logged_in.get(f"/history/{record.pk}/").content.decode()
    notice = re.search(r'<p class="not-kept" data-testid="not-kept">([^<]+)</p>', later)
    assert notice and notice.start() < later.index('<section class="card result"')  # at the top, not collapsed
    assert notice.group(1).startswith("The image and the map of where the model looked were not kept: images are "
                                      "never stored")
    alone = logged_in.post("/predict/diabetes/", DIABETES_FORM)
    form_only = Prediction.objects.filter(parent__isnull=True).exclude(pk=record.pk).get()
    assert alone.status_code == 200 and 'data-testid="not-kept"' not in logged_in.get(
        f"/history/{form_only.pk}/").content.decode()


@pytest.mark.parametrize("model, upload, picture", [("retina", lambda: sample("fundus", "retina.jpg").read_bytes(),
                                                     "the photo"),
                                                    ("ecg", ecg_printout, "the printout's lead area")])
def test_the_maps_alt_text_says_where_the_model_looked_and_the_map_can_be_enlarged(logged_in, artifacts, model,
                                                                                   upload, picture):
    page = logged_in.post(f"/predict/{model}/", {"image": named_upload(upload())}).content.decode()
    alt = re.search(r'<img src="data:image/jpeg;base64,[^"]+" alt="([^"]+)" data-testid="activation-map">', page).group(1)
    assert re.fullmatch(rf"Where the model looked, on {picture} as the model was given it: strongest "
                        r"(in the (top|bottom) (left|centre|right)|on the (left|right)|in the centre|"
                        r"in several places across the picture)\.", html.unescape(alt)), alt
    figure = re.search(r'<figure class="thumb map" id="(map-\d+)">.*?</figure>', page, re.S)
    assert f'data-enlarge="{figure.group(1)}" aria-expanded="false"' in figure.group(0)


# No model here is always right, so no page prints a certainty (formatting.percent: tests/test_formatting.py).

def test_result_and_history_pages_never_print_100_or_0_percent(logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.0004, 0.0002, 0.0001, 0.0003, 0.999])
    decided.setattr(ScriptedTabular, "probability", 0.9991)
    decided.setattr(ScriptedTabular, "contributions", {"glucose": 1.0})
    pages = [logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}),
             logged_in.post("/predict/diabetes/", DIABETES_FORM)]
    pages = [page_text(p.content.decode()) for p in pages]
    pages += [page_text(logged_in.get(path).content.decode()) for path in ("/history/", "/")]
    for text in pages:
        assert not re.search(r"(?<![\d.])(100|0)\s?%", text), text
    retina, diabetes, history, dashboard = pages
    assert "> 99%" in retina and retina.count("< 1%") == 4  # the four unlikely grades
    assert "> 99%" in diabetes
    assert "Referable diabetic retinopathy · > 99% · most likely grade Proliferative DR" in history
    assert "> 99% · high risk" in history
    assert "> 99% · high risk" in dashboard


def test_the_pregnancies_help_speaks_of_the_women_the_model_learnt_from(logged_in, artifacts):
    text = " ".join(page_text(logged_in.get("/predict/diabetes/").content.decode()).split())
    assert "Number of times pregnant. The model learnt from women only." in text and "for men" not in text


@pytest.mark.parametrize("probabilities, words", [
    ([0.90, 0.05, 0.03, 0.02], "A normal read of the printout does not rule out an acute coronary syndrome"),
    ([0.40, 0.20, 0.20, 0.20], "Have the image read by a clinician; do not act on the model's answer."),
    ([0.05, 0.05, 0.85, 0.05], "Have the ECG read by a clinician now"),
])
def test_every_ecg_result_says_what_to_do_next_no_stronger_than_its_evidence(logged_in, decided, probabilities,
                                                                             words):
    decided.setattr(ScriptedImage, "probabilities", probabilities)
    assert next_step_on(ecg_page(logged_in)).startswith(f"Next step: {words}")
    card = " ".join(page_text(logged_in.get("/models/ecg/").content.decode()).split())
    assert words in card  # the card lists each answer's next step, from the same catalogue entry




# One page, one story (issue 32): an urgent image finding leads, a form's panel says what the image showed
# and that its estimate did not use it, and a refused optional image holds back no estimate.

def _sections(page: str) -> list[str]:
    return re.findall(r'<section class="card result"[^>]*>\s*<h2[^>]*>([^<]+)</h2>', page)


def test_an_urgent_ecg_finding_leads_the_heart_result_whose_panel_says_the_ecg_was_read_and_not_used(
        logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.94, 0.02])
    page = logged_in.post("/predict/heart/", {**SPARSE_HEART, "ecg_image": named_upload(ecg_printout())}).content.decode()
    assert _sections(page) == ["ECG finding", "Heart disease risk"]
    heart = page[page.index(">Heart disease risk</h2>"):]
    texts = [text for _, text in notes_on(heart)]
    assert ("The 12-lead ECG printout was read by the ECG model, which found: Myocardial Infarction. This estimate "
            "did not use it: it takes the resting ECG only as typed on the form (normal, ST-T wave abnormality, "
            "left ventricular hypertrophy), a different reading, left blank here.") in texts
    coverage = next(text for text in texts if text.startswith("Based on only"))
    assert "resting ECG (not typed; the attached 12-lead ECG printout was read separately)" in coverage
    shown = re.search(r"<dt>Resting ECG</dt><dd[^>]*>([^<]+)</dd>", heart).group(1)
    assert shown == "Not typed; the attached 12-lead ECG printout was read separately"
    decided.setattr(ScriptedImage, "probabilities", [0.94, 0.02, 0.02, 0.02])  # a normal read: the form leads
    page = logged_in.post("/predict/heart/", {**SPARSE_HEART, "ecg_image": named_upload(ecg_printout())}).content.decode()
    assert _sections(page) == ["Heart disease risk", "ECG finding"]
    assert "which found: Normal." in " ".join(page_text(page).split())


def test_proliferative_retinopathy_is_referred_urgently_and_leads_a_diabetes_result(logged_in, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.10, 0.10, 0.76])
    assert next_step_on(retina_result(logged_in)).startswith(
        "Next step: Proliferative retinopathy is the most likely grade: refer urgently to an ophthalmologist")
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "retina_image": named_upload(
        sample("fundus", "retina.jpg").read_bytes())}).content.decode()
    assert _sections(page) == ["Diabetic retinopathy grade", "Diabetes risk"]
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.76, 0.10, 0.10])
    assert next_step_on(retina_result(logged_in)).startswith("Next step: Refer to an ophthalmologist within")


def test_a_refused_optional_image_still_gives_the_estimate_and_says_once_why_it_was_not_read(
        logged_in, decided, artifacts):
    # Not an ECG at all: refused by the gate before any model runs.
    response = logged_in.post("/predict/heart/", {**SPARSE_HEART, "ecg_image": sample("fundus", "retina.jpg").open("rb")})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="probability"' in page and _sections(page) == ["Heart disease risk"]
    record = Prediction.objects.get()
    assert record.model_name == "heart" and not record.attachments.exists()
    [note] = [text for _, text in notes_on(page) if "was not read" in text]
    assert note.startswith("The 12-lead ECG printout was not read: ") and "does not look like an ECG printout" in note
    assert note.endswith("This estimate is made from the form alone, so it stands without it.")
    assert " ".join(page_text(page).split()).count("was not read") == 1
    later = logged_in.get(f"/history/{record.pk}/").content.decode()
    assert note in [text for _, text in notes_on(later)]
    assert "12-lead ECG printout not read" in page_text(logged_in.get("/history/").content.decode())
    # An ECG printout outside what the ECG model was validated on: the estimate stands too.
    rewrite_card(artifacts, "ecg", lambda card: card["domain"].update(threshold=-1.0))
    response = logged_in.post("/predict/heart/", {**SPARSE_HEART, "ecg_image": named_upload(ecg_printout())})
    assert response.status_code == 200
    page = response.content.decode()
    message = json.loads((artifacts / "ecg" / "card.json").read_text())["domain"]["message"]
    assert (f"The 12-lead ECG printout was not read: {message} This estimate is made from the form alone, so it "
            "stands without it.") in [text for _, text in notes_on(page)]
    assert Prediction.objects.filter(model_name="ecg").count() == 0 and 'data-testid="probability"' in page


# Numbers as strong as their evidence: from the served card's own tables.

def test_no_probability_is_shown_higher_than_the_cards_calibration_bears_out(logged_in, decided, artifacts):
    # The top validation bins pooled to at least ten images: 8 at 95% all right, 11 at 86% with 9 right:
    # 17 of 19 right (89%) at 90% stated, so nothing above 89% is shown.
    rewrite_card(artifacts, "ecg", lambda card: card["calibration"].update(reliability_after=[
        {"confidence": 0.55, "accuracy": 0.5, "images": 20}, {"confidence": 0.86, "accuracy": 9 / 11, "images": 11},
        {"confidence": 0.95, "accuracy": 1.0, "images": 8}]))
    decided.setattr(ScriptedImage, "probabilities", [0.001, 0.001, 0.997, 0.001])
    page = ecg_page(logged_in)
    text = " ".join(page_text(page).split())
    assert "Myocardial Infarction > 89% probability" in text and "99%" not in text
    assert re.search(r"<td>Myocardial Infarction</td><td[^>]*>&gt; 89%</td>", page)
    assert "Myocardial Infarction · > 89%" in " ".join(page_text(logged_in.get("/history/").content.decode()).split())
    card = " ".join(page_text(logged_in.get("/models/ecg/").content.decode()).split())
    assert ("It shows no probability above 89%: of the 19 validation images it was most confident about (on average "
            "90%), it was right on 17") in card
    decided.setattr(ScriptedImage, "probabilities", [0.05, 0.05, 0.85, 0.05])  # under the ceiling: as it is
    assert "Myocardial Infarction 85% probability" in " ".join(page_text(ecg_page(logged_in)).split())


def test_a_finding_with_few_test_cases_says_how_few(logged_in, decided, artifacts):
    def few(card):
        card["metrics"]["served"]["support"].update({"Myocardial Infarction": 4, "History of MI": 10})
        card["metrics"]["served"]["recall"]["Myocardial Infarction"] = {"value": 0.75, "ci95": [0.0, 1.0]}
    rewrite_card(artifacts, "ecg", few)
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.94, 0.02])
    assert ("caution", "Myocardial Infarction: its test set had only 4 such ECGs, of which it found 3, too few to say "
            "how often the model is right about it.") in notes_on(ecg_page(logged_in))
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.02, 0.94])  # ten behind it: enough
    assert not [text for _, text in notes_on(ecg_page(logged_in)) if "its test set had" in text]


def test_a_negative_answer_says_how_often_it_missed_on_the_test_set(logged_in, decided, artifacts, api_token, client):
    test = {"split": "test", "images": 57, "referable_eyes": 41, "referable_referred": 36, "referable_uncertain": 2,
            "referable_missed": 3, "other_eyes": 16, "other_referred": 5, "other_uncertain": 1, "other_not_referred": 10}
    rewrite_card(artifacts, "retina", lambda card: card["decision"].update(test=test))
    decided.setattr(ScriptedImage, "probabilities", [0.10, 0.55, 0.35, 0.0, 0.0])
    missed = "On its test photos it missed 3 of 41 eyes with referable diabetic retinopathy: about 1 in 14."
    assert next_step_on(retina_result(logged_in)).endswith(missed)
    assert missed in " ".join(page_text(logged_in.get("/models/retina/").content.decode()).split())
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.76, 0.10, 0.10])  # a referral says no miss rate
    assert "missed" not in next_step_on(retina_result(logged_in))

    def confused(card):
        card["metrics"]["served"]["confusion_matrix"] = [[26, 0, 0, 0], [2, 36, 4, 2], [1, 0, 3, 0], [2, 2, 0, 11]]
    rewrite_card(artifacts, "ecg", confused)
    decided.setattr(ScriptedImage, "probabilities", [0.90, 0.05, 0.03, 0.02])
    assert next_step_on(ecg_page(logged_in)).endswith(
        "In its test set its most likely answer was Normal for 5 of 63 ECGs with another finding: about 1 in 13.")
    answer = client.post("/api/v1/predict/ecg", {"image": named_upload(ecg_printout())},
                         HTTP_AUTHORIZATION=f"Token {api_token}").json()
    assert answer["next_step"].endswith("for 5 of 63 ECGs with another finding: about 1 in 13.")
