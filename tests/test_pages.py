"""Clinician pages through the Django test client: forms, results, history, cards."""
from __future__ import annotations

import datetime
import html
import json
import re

import pytest

from predictors.models import Prediction

from .conftest import ROOT, sample

pytestmark = pytest.mark.django_db

DIABETES_FORM = {"pregnancies": "2", "glucose": "168", "blood_pressure": "72", "skin_thickness": "",
                 "insulin": "", "bmi": "35.1", "diabetes_pedigree": "0.52", "age": "45"}
HEART_FORM = {"age": "61", "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": "140",
              "cholesterol": "", "fasting_blood_sugar_gt_120": "", "resting_ecg": "lv_hypertrophy",
              "max_heart_rate": "120", "exercise_angina": "yes", "st_depression": "2", "st_slope": "flat",
              "major_vessels": "", "thal": "reversible_defect"}


def test_dashboard_lists_the_four_models_without_loading_them(logged_in, artifacts):
    from predictors.serving.registry import get_loader

    page = logged_in.get("/").content.decode()
    for title in ("Diabetes risk", "Heart disease risk", "Diabetic retinopathy grade", "ECG finding"):
        assert title in page
    # Clinicians see whether a model can answer, not how the server caches it or its version hash.
    assert page.count("Ready") == 4 and "loaded" not in page
    assert not any(str(m["version"]) in page for m in get_loader().status()["models"])
    assert all(m["state"] == "not_loaded" for m in get_loader().status()["models"])


def test_dashboard_shows_an_unavailable_model(logged_in, artifacts):
    (artifacts / "retina" / "manifest.json").unlink()
    response = logged_in.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")})
    assert response.status_code == 503 and "unavailable right now" in response.content.decode()
    page = logged_in.get("/").content.decode()
    assert page.count("Unavailable right now") == 1 and page.count("Ready") == 3


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


def test_diabetes_with_fundus_photo_gives_the_combined_picture(logged_in, artifacts):
    data = {**DIABETES_FORM, "retina_image": sample("fundus", "retina.jpg").open("rb")}
    response = logged_in.post("/predict/diabetes/", data)
    assert response.status_code == 200, response.content.decode()[:2000]
    parent = Prediction.objects.get(parent__isnull=True)
    child = parent.attachments.get()
    assert child.model_name == "retina" and "sha256" in child.inputs["image"]
    page = logged_in.get(f"/history/{parent.pk}/").content.decode()
    assert "Diabetic retinopathy grade" in page and "Referable diabetic retinopathy" in page
    assert "Probability per class" in page


def test_heart_form_uses_clinical_words_and_accepts_unknowns(logged_in, artifacts):
    page = logged_in.get("/predict/heart/").content.decode()
    for words in ("Typical angina", "Non-anginal pain", "ST-T wave abnormality", "Left ventricular hypertrophy",
                  "Downsloping", "Reversible defect", "Unknown"):
        assert words in page
    response = logged_in.post("/predict/heart/", {**HEART_FORM, "ecg_image": sample("ecg", "ecg00026.jpg").open("rb")})
    assert response.status_code == 200
    parent = Prediction.objects.get(parent__isnull=True)
    assert parent.inputs["cholesterol"] is None and parent.inputs["exercise_angina"] is True
    assert parent.attachments.get().model_name == "ecg"


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


def test_wrong_photo_on_the_combined_form_records_nothing(logged_in, artifacts):
    data = {**DIABETES_FORM, "retina_image": sample("ecg", "ecg00001.png").open("rb")}
    response = logged_in.post("/predict/diabetes/", data)
    assert response.status_code == 400
    assert "does not look like a retinal fundus photograph" in response.content.decode()
    assert Prediction.objects.count() == 0


def test_image_pages_refuse_non_images(logged_in, artifacts, tmp_path):
    fake = tmp_path / "scan.png"
    fake.write_text("not an image")
    response = logged_in.post("/predict/ecg/", {"image": fake.open("rb")})
    assert response.status_code == 400
    assert "not an image this site can read" in response.content.decode()


def test_ecg_page_result(logged_in, artifacts):
    """The page shows the recorded answer: each class with its own probability, the headline its top class."""
    from predictors.presentation import percent

    response = logged_in.post("/predict/ecg/", {"image": sample("ecg", "stemi_printout.png").open("rb")})
    assert response.status_code == 200
    page = response.content.decode()
    outputs = Prediction.objects.get(model_name="ecg").outputs
    rows = re.findall(r"<tr[^>]*><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    labels = json.loads((artifacts / "ecg" / "card.json").read_text())["labels"]
    # In the model's label order, whatever order the database keeps the stored mapping in.
    assert [(label, html.unescape(shown)) for label, shown in rows] == \
        [(label, percent(outputs["probabilities"][label])) for label in labels]
    headline = re.search(r'data-testid="label">([^<]+)<', page).group(1)
    assert headline == ("Uncertain" if outputs["uncertain"] else outputs["label"])
    assert f'<tr class="leading"><td>{outputs["label"]}</td>' in page


def test_model_unavailable_page_says_why(logged_in, artifacts):
    (artifacts / "ecg" / "model.onnx").unlink()
    response = logged_in.post("/predict/ecg/", {"image": sample("ecg", "ecg00001.png").open("rb")})
    assert response.status_code == 503
    assert "unavailable right now" in response.content.decode()


def test_history_is_own_newest_first_and_paginated(logged_in, clinician, django_user_model):
    other = django_user_model.objects.create_user("someone_else", password="x" * 12)
    Prediction.objects.create(user=other, model_name="diabetes", model_version="v", inputs={},
                              outputs={"label": "SECRET", "confidence": 1}, latency_ms=1)
    start = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)
    # Inserted in an order unrelated to their times: only the timestamps can sort them.
    hours = [7, 0, 22, 3, 15, 11, 19, 1, 9, 5, 13, 20, 2, 17, 8, 21, 4, 12, 16, 6, 10, 18, 14]
    ids_by_hour = {}
    for hour in hours:
        record = Prediction.objects.create(user=clinician, model_name="ecg", model_version="v", inputs={},
                                           outputs={"label": "Normal", "confidence": 0.9, "probabilities": {}},
                                           latency_ms=1, created=start + datetime.timedelta(hours=hour))
        ids_by_hour[hour] = record.pk
    newest_first = [ids_by_hour[h] for h in sorted(hours, reverse=True)]
    first = logged_in.get("/history/").content.decode()
    second = logged_in.get("/history/?page=2").content.decode()
    assert "Page 1 of 2" in first and "SECRET" not in first
    shown = [int(pk) for page in (first, second) for pk in re.findall(r'<td class="when"[^>]*><a href="/history/(\d+)/"', page)]
    assert shown == newest_first
    foreign = Prediction.objects.get(user=other)
    assert logged_in.get(f"/history/{foreign.pk}/").status_code == 404


def test_model_card_page_and_plots(logged_in, artifacts):
    page = logged_in.get("/models/heart/").content.decode()
    for heading in ("What it predicts", "What it learnt from", "How well it does", "Where it fails", "Figures"):
        assert f">{heading}</h2>" in page
    card = json.loads((artifacts / "heart" / "card.json").read_text())
    for site in card["metrics"]["external_validation"]:
        assert f"<td>{site}</td>" in page
    assert "not a medical device" in page
    assert "external_validation" not in page and "library_versions" not in page  # no raw dump on the page
    raw = logged_in.get("/models/heart/card.json")
    assert raw.status_code == 200 and raw.json() == card and 'href="/models/heart/card.json"' in page
    plot = logged_in.get("/models/heart/plots/roc.png")
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png"
    assert 'src="/models/heart/plots/roc.png"' in page
    assert logged_in.get("/models/heart/plots/nothing.png").status_code == 404


def test_status_and_metrics_are_for_staff(client, logged_in, admin_client, artifacts, settings):
    assert logged_in.get("/status/").status_code == 403
    assert logged_in.get("/metrics").status_code == 403
    logged_in.post("/predict/diabetes/", DIABETES_FORM)
    status = admin_client.get("/status/").json()
    diabetes = next(m for m in status["models"] if m["name"] == "diabetes")
    assert diabetes["state"] == "loaded" and status["rss_mb"] > 0
    metrics = admin_client.get("/metrics").content.decode()
    assert 'healthoracle_predictions_total{model="diabetes",outcome="ok"}' in metrics
    assert "healthoracle_prediction_seconds_bucket" in metrics and "healthoracle_process_resident_memory_bytes" in metrics
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_ready_checks_database_and_artifacts_without_loading(client, artifacts):
    response = client.get("/ready/")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    (artifacts / "heart" / "model.ubj").write_bytes(b"tampered")
    body = client.get("/ready/").json()
    assert body["status"] == "not_ready" and "manifest" in body["checks"]["artifact:heart"]


def described_by_ids(page: str) -> tuple[list[str], set[str]]:
    wanted = [i for value in re.findall(r'aria-describedby="([^"]+)"', page) for i in value.split()]
    return wanted, set(re.findall(r'\bid="([^"]+)"', page))


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


def test_history_filter_errors_are_described(logged_in):
    page = logged_in.get("/history/?since=2026-05-11&until=2026-05-01").content.decode()
    wanted, ids = described_by_ids(page)
    assert "id_until_error" in wanted and set(wanted) <= ids


def relative_luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_focus_ring_stands_out_from_every_background():
    """WCAG 2.2 (1.4.11, 2.4.13): a focus indicator needs 3:1 against what is next to it."""
    css = (ROOT / "static" / "healthoracle.css").read_text()
    variables = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    rings = re.findall(r"[^{}]*:focus[^{]*\{[^}]*outline:\s*\d+px solid ([^;}]+)", css)
    assert rings
    for ring in rings:
        colour = variables.get(ring.strip().removeprefix("var(").removesuffix(")"), ring.strip())
        for background in ("#ffffff", variables["--paper"]):
            assert contrast(colour, background) >= 3, (colour, background)
