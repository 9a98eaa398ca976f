"""The prediction forms (predictors/forms.py): clinical words and units, field errors that keep what was
typed, photos refused in words, case references that may identify a patient, screen readers."""
from __future__ import annotations

import html
import io
import json
import re

import pytest

from predictors.catalogue import image_format_words
from predictors.models import Prediction

from .support import (DIABETES_FORM, HEART_FORM, ScriptedTabular, dark_fundus, described_by_ids, ecg_printout,
                      factors_on, named_upload, next_step_on, notes_on, post_json, sample)

pytestmark = pytest.mark.django_db


def test_diabetes_form_shows_units_and_blank_means_unknown(logged_in, artifacts):
    page = logged_in.get("/predict/diabetes/").content.decode()
    for unit in ("mg/dL", "mm Hg", "µU/mL", "kg/m²", "years"):
        assert unit in page
    response = logged_in.post("/predict/diabetes/", DIABETES_FORM)
    assert response.status_code == 200
    record = Prediction.objects.get()
    assert record.inputs["insulin"] is None and record.inputs["skin_thickness"] is None
    result = response.content.decode()
    assert "estimated probability of diabetes within five years" in result
    # A glucose of 168 mg/dL two hours into a tolerance test is the strongest sign in the Pima data.
    factors = re.findall(r"<li class=\"(?:raised|lowered)\">([^<]+)</li>", result)
    assert factors[0] == "Glucose 168 mg/dL raised the risk"
    assert record.model_version in result and "/models/diabetes/" in result
    assert result.count("not a medical device") == 1
    assert logged_in.get(f"/history/{record.pk}/").content.decode().count("Glucose 168 mg/dL raised the risk") == 1


def test_heart_form_uses_clinical_words_and_accepts_unknowns(logged_in, artifacts):
    page = logged_in.get("/predict/heart/").content.decode()
    for words in ("Typical angina", "Non-anginal pain", "ST-T wave abnormality", "Left ventricular hypertrophy",
                  "Downsloping", "Reversible defect", "Unknown"):
        assert words in page
    response = logged_in.post("/predict/heart/", {**HEART_FORM, "ecg_image": named_upload(ecg_printout())})
    assert response.status_code == 200
    parent = Prediction.objects.get(parent__isnull=True)
    assert parent.inputs["cholesterol"] is None and parent.inputs["exercise_angina"] is True
    assert parent.attachments.get().model_name == "ecg"


def test_only_number_boxes_say_blank_means_unknown(logged_in):
    page = logged_in.get("/predict/heart/").content.decode()
    # resting_bp, cholesterol, max_heart_rate, st_depression, major_vessels; not the five dropdowns.
    assert page.count("Leave blank if unknown") == 5


@pytest.mark.parametrize("field, value, message", [
    ("glucose", "1000", "between 40 and 400"),
    ("glucose", "abc", "Enter a number"),
    ("glucose", "nan", "Enter a number"),
    ("glucose", "inf", "Enter a number"),
    ("age", "", "This field is required"),
    ("pregnancies", "2.5", "whole number"),
])
def test_bad_form_values_show_field_errors_and_keep_the_input(logged_in, artifacts, field, value, message):
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, field: value})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page and "Please correct the fields" in page
    assert 'value="35.1"' in page  # what the clinician typed is still there
    assert Prediction.objects.count() == 0


def test_wrong_photo_on_the_combined_form_records_the_estimate_alone(logged_in, artifacts):
    """Issue 32: the form's estimate never uses the optional photo, so a refused one holds it back no more."""
    data = {**DIABETES_FORM, "retina_image": sample("ecg", "ecg00001.png").open("rb")}
    response = logged_in.post("/predict/diabetes/", data)
    assert response.status_code == 200
    assert "does not look like a retinal fundus photograph" in response.content.decode()
    [record] = Prediction.objects.all()
    assert record.model_name == "diabetes" and not record.attachments.exists()


def test_image_pages_refuse_non_images_naming_the_formats_they_read(logged_in, artifacts, tmp_path):
    pdf = tmp_path / "ecg-export.pdf"
    pdf.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    response = logged_in.post("/predict/ecg/", {"image": pdf.open("rb")})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert (f"The file is not an image this site can read. It reads {image_format_words()} images: export or save a "
            "PDF or a document as one of those, or photograph the page.") in page


def test_the_choose_it_again_note_shows_only_when_a_file_was_chosen(logged_in, artifacts):
    without_file = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "age": "7"}).content.decode()
    assert "choose it again" not in without_file and "Please correct the fields" in without_file
    photo = {**DIABETES_FORM, "age": "7", "retina_image": sample("fundus", "retina.jpg").open("rb")}
    assert "choose it again" in logged_in.post("/predict/diabetes/", photo).content.decode()


def test_the_page_form_says_what_to_fix_and_keeps_the_typed_values(logged_in, artifacts):
    dark = io.BytesIO(dark_fundus())
    dark.name = "dark.jpg"
    response = logged_in.post("/predict/retina/", {"case_reference": "Bed 7", "image": dark})
    assert response.status_code == 400
    page = response.content.decode()
    assert "cannot be graded reliably" in page and "too dark" in page
    assert 'value="Bed 7"' in page
    assert Prediction.objects.count() == 0
    # Beside a form, the photo is not read and the form's estimate is made all the same (issue 32).
    dark.seek(0)
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": "Bed 7",
                                                     "retina_image": dark})
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be graded reliably" in page and "too dark" in page
    assert "Bed 7" in page and "35.1 kg/m²" in page
    assert Prediction.objects.get().model_name == "diabetes"


# A case reference that looks like a patient identifier is held back until confirmed.

@pytest.mark.parametrize("reference, signs", [
    ("Jane Smith DOB 01/02/1960 MRN 1234567", "a date and a long number and words such as DOB or MRN and what "
                                              "looks like a name"),
    ("John Smith", "what looks like a name"),
    ("Anna Müller", "what looks like a name"),
    ("Smith 12.03.1961", "a date"),
    ("943 476 5919", "a long number"),
    ("mrn 55", "words such as DOB or MRN"),
])
def test_a_reference_that_may_identify_a_patient_is_held_until_edited_or_confirmed(logged_in, artifacts, reference,
                                                                                   signs):
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": reference})
    assert response.status_code == 400 and Prediction.objects.count() == 0
    page = html.unescape(response.content.decode())
    assert f"This may identify a patient: it contains {signs}." in page
    assert f'value="{reference}"' in page and 'value="35.1"' in page  # nothing typed is lost
    assert 'name="keep_reference"' in page
    edited = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": "Bed 4"})
    assert edited.status_code == 200 and Prediction.objects.get().reference == "Bed 4"
    confirmed = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": reference,
                                                      "keep_reference": "on"})
    assert confirmed.status_code == 200
    assert Prediction.objects.filter(reference=reference).count() == 1


@pytest.mark.parametrize("reference", ["Bed 4", "Clinic B, slot 3", "ward 7 bay 2", "Rm 101 review", "Ward Seven",
                                       "Eye Clinic"])
def test_ordinary_references_pass_without_a_question(logged_in, artifacts, reference):
    assert 'name="keep_reference"' not in logged_in.get("/predict/diabetes/").content.decode()
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": reference})
    assert response.status_code == 200 and Prediction.objects.get().reference == reference


@pytest.mark.parametrize("path, data", [
    ("/predict/diabetes/", None), ("/predict/heart/", None), ("/predict/retina/", None), ("/predict/ecg/", None),
    ("/predict/diabetes/", {**DIABETES_FORM, "glucose": "1000", "age": ""}),
    ("/predict/heart/", {**HEART_FORM, "sex": ""}),
    ("/predict/retina/", {}),
])
def test_screen_readers_find_every_fields_help_and_errors(logged_in, artifacts, path, data):
    page = (logged_in.get(path) if data is None else logged_in.post(path, data)).content.decode()
    wanted, ids = described_by_ids(page)
    assert wanted, "no field is described"
    assert [i for i in wanted if i not in ids] == []
    if data is not None:  # each invalid field names its error
        invalid = re.findall(r'<(?:input|select)[^>]*aria-invalid="true"[^>]*>', page)
        assert invalid and all("_error" in tag for tag in invalid)


# Forms a clinician can fill (issue 32 item 4).

def test_the_pedigree_function_may_be_left_blank_and_is_then_an_unknown_finding(logged_in, scripted):
    page = html.unescape(logged_in.get("/predict/diabetes/").content.decode())
    assert "Clinics do not usually work it out. Leave blank if unknown." in page
    assert not re.search(r'name="diabetes_pedigree"[^>]*required', page)
    scripted.setattr(ScriptedTabular, "contributions", {"diabetes_pedigree": 3.0, "glucose": 1.0, "age": 0.2})
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "diabetes_pedigree": ""})
    assert response.status_code == 200
    assert Prediction.objects.get().inputs["diabetes_pedigree"] is None
    result = response.content.decode()
    assert "pedigree" not in " ".join(factors_on(result)).lower()  # never a reason when unknown
    [(_, note)] = notes_on(result)
    assert note.startswith("Based on 5 of 8 findings; unknown: triceps skinfold, insulin, diabetes pedigree function.")


def test_an_unknown_pedigree_gives_the_estimate_of_a_typical_one_not_of_a_high_one(client, api_token, artifacts):
    from predictors.inputs.diabetes import PIMA_MEDIAN_PEDIGREE

    def probability(**values):
        body = {"pregnancies": 2, "glucose": 140, "bmi": 32.0, "age": 45, **values}
        return post_json(client, "diabetes", body, api_token).json()["probability"]

    assert probability() == probability(diabetes_pedigree=PIMA_MEDIAN_PEDIGREE)


@pytest.mark.parametrize("glucose, unit, diagnostic", [("11.1", "mmol/L", True), ("200", "mg/dL", True),
                                                       ("11.0", "mmol/L", False), ("199", "mg/dL", False)])
def test_the_diagnostic_glucose_threshold_applies_in_either_unit(logged_in, scripted, glucose, unit, diagnostic):
    page = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": glucose, "glucose_unit": unit})
    assert page.status_code == 200
    assert next_step_on(page.content.decode()).startswith("Next step: Confirm the diagnosis") is diagnostic


def test_the_heart_form_asks_for_vessels_as_an_angiography_result_and_may_go_without(logged_in, scripted):
    page = html.unescape(logged_in.get("/predict/heart/").content.decode())
    assert "Vessels with narrowing on angiography (0–3), if an angiogram was done" in page
    assert "fluoroscopy" not in page.split("Vessels with narrowing")[0]  # no longer the question's words
    response = logged_in.post("/predict/heart/", {**HEART_FORM, "major_vessels": ""})
    assert response.status_code == 200 and Prediction.objects.get().inputs["major_vessels"] is None


def test_the_heart_result_says_its_patients_were_referred_for_angiography_with_the_cards_share(logged_in, scripted):
    from .support import SHIPPED

    data = json.loads((SHIPPED / "heart" / "card.json").read_text())["data"]
    share = f"{round(100 * data['positives'] / data['rows'])}% of whom ({data['positives']} of {data['rows']})"
    page = logged_in.post("/predict/heart/", HEART_FORM).content.decode()
    [(level, text)] = [n for n in notes_on(page, population=True) if "already referred" in n[1]]
    assert level == "caution" and "already referred for coronary angiography" in text and share in text


def test_a_refused_form_has_one_alert_a_summary_that_links_each_bad_field_and_takes_the_focus(logged_in, artifacts):
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "glucose": "1000", "age": ""})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert len(re.findall(r'role="alert"', page)) == 1
    summary = re.search(r'<div class="errors error-summary"[^>]*role="alert"[^>]*>(.*?)</div>', page, re.S)
    assert summary and "data-focus-on-load" in summary.group(0) and 'tabindex="-1"' in summary.group(0)
    links = re.findall(r'<a href="#(id_\w+)">([^<]+)</a>', summary.group(1))
    assert links == [("id_glucose", "Glucose: Enter a value between 40 and 400 mg/dL."),
                     ("id_age", "Age (years): This field is required.")]
    assert "Please correct the fields marked below" in summary.group(1)


def test_a_refused_optional_photo_leaves_the_estimate_or_says_submit_again_without_it(logged_in, artifacts):
    data = {**DIABETES_FORM, "retina_image": sample("ecg", "ecg00001.png").open("rb")}
    response = logged_in.post("/predict/diabetes/", data)
    page = " ".join(html.unescape(response.content.decode()).split())
    answered = response.status_code == 200 and 'data-testid="probability"' in page
    assert answered or "submit again without it" in page
