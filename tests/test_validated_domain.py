"""An image answer only inside what its model was validated on (issue 21), with the shipped models.

Another machine's ECG printout gets no finding: the API answers 422 `outside_domain`, the
page keeps what was typed and shows what a supported printout looks like, and nothing is
recorded. The training machine's own printouts, as taken, are still answered.

Issue 29: real PTB-XL recordings of the drawn test patients, printed by the second renderer
(predictors.training.other_formats) in layouts close to the validated one, that the served
model once answered wrongly at 86-99%: two abnormal ECGs of none of the four findings, one
called Normal and one a myocardial infarction.
"""
from __future__ import annotations

import json

import pytest

from predictors.models import Prediction

from .support import HEART_FORM, SHIPPED, assert_error, post_image, sample

pytestmark = pytest.mark.django_db

# Other machines' printouts in ../shared/samples/ecg, far outside the training machine's layout.
OTHER_MACHINES = ["ecg00001.png", "ecg00005.jpg", "ecg00026.jpg"]


@pytest.mark.parametrize("name", OTHER_MACHINES)
def test_another_machines_printout_gets_no_finding_from_the_api(client, api_token, name):
    response = post_image(client, "ecg", sample("ecg", name).read_bytes(), api_token, name=name)
    error = assert_error(response, 422, "outside_domain")
    assert "one ECG machine" in error["message"] and "have the ECG read by a clinician" in error["message"]
    assert error["fields"] == {"image": [error["message"]]}
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("layout", ["side header", "pdf export"])
@pytest.mark.parametrize("ecg_id", [1298, 1930])
def test_another_layouts_page_the_model_cannot_read_gets_no_finding(client, api_token, layout, ecg_id):
    from predictors.training import other_formats, printouts

    (recording,) = [r for r in printouts.recordings() if r.ecg_id == ecg_id]
    assert recording.patient_id in printouts.test_patients(printouts.recordings())  # never fitted on
    page = other_formats.render_ecg(layout, other_formats.recorded(printouts.read_signals(recording)), ecg_id)
    response = post_image(client, "ecg", page, api_token, name=f"{ecg_id}.png")
    assert_error(response, 422, "outside_domain")
    assert not Prediction.objects.exists()


def test_the_training_machines_own_test_printouts_are_answered(client, api_token):
    """A spread of the ECG model's held-out test photos (never fitted on), as taken: inside, answered."""
    from predictors.training import real_images

    test_files = json.loads((SHIPPED / "ecg" / "card.json").read_text())["data"]["test_files"]
    assert len(test_files) > 80
    for file in test_files[::10]:
        response = post_image(client, "ecg", (real_images.data_root() / file).read_bytes(), api_token)
        assert response.status_code == 200, (file, response.content)


def test_the_heart_page_answers_without_an_ecg_outside_the_validated_domain_and_says_why(logged_in):
    """An attached printout outside what the ECG model was validated on is not read; the heart estimate
    is still made and recorded, and the page says once why the printout was not read (issue 32)."""
    with open(sample("ecg", "ecg00026.jpg"), "rb") as printout:
        response = logged_in.post("/predict/heart/", {**HEART_FORM, "case_reference": "bay 3", "ecg_image": printout})
    page = response.content.decode()
    assert response.status_code == 200
    assert "one 12-lead report layout" in page  # the domain's own message: what the model was validated on
    record = Prediction.objects.get()
    assert record.model_name == "heart" and record.reference == "bay 3" and record.inputs["resting_bp"] == 140
    assert record.outputs["image_not_read"]["model"] == "ecg"
    assert not record.attachments.exists()


def test_the_card_page_states_the_validated_domain(logged_in):
    page = logged_in.get("/models/ecg/").content.decode()
    assert "Validated on photos and scans of printouts of one 12-lead report layout" in page
