"""predictors.services: what a prediction answers and what it records, with the shipped models
and real photos: the risk band, the factors named, the image decisions read from the model's
card, and a submission recorded whole or not at all."""
from __future__ import annotations

import shutil

import pytest
from django.db.models.signals import pre_save

from predictors.images.decode import decode
from predictors.inputs import TABULAR_SCHEMAS
from predictors.models import Prediction
from predictors.serving.registry import ModelUnavailable, get_loader
from predictors.services import ImageRequest, OutsideDomain, TabularRequest, predict, run_image, run_tabular

from .support import LIMITS, SHIPPED, ScriptedTabular, ecg_printout, rewrite_card, sample

pytestmark = pytest.mark.django_db

# Glucose, blood pressure, skin thickness and insulin unknown: four of eight inputs.
DIABETES = {"pregnancies": 2, "bmi": 35.1, "diabetes_pedigree": 0.52, "age": 45}
UNKNOWN = {"glucose", "blood_pressure", "skin_thickness", "insulin"}
HEART = {"age": 61, "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": 140}


def diabetes_request(values: dict | None = None) -> TabularRequest:
    """The values as the API validates them."""
    schema = TABULAR_SCHEMAS["diabetes"]
    return TabularRequest("diabetes", schema.validate(schema.from_json(values or DIABETES)))


def fundus_request() -> ImageRequest:
    return ImageRequest("retina", decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS))


def other_machines_printout() -> ImageRequest:
    """Another ECG machine's printout: outside what the ECG model was validated on."""
    return ImageRequest("ecg", decode(sample("ecg", "ecg00001.png").read_bytes(), **LIMITS))


def shipped_copy(tmp_path, settings, *names: str):
    """The shipped artifacts named, copied where a test may change them, and served."""
    for name in names:
        shutil.copytree(SHIPPED / name, tmp_path / name)
    settings.MODEL_ARTIFACTS_DIR = tmp_path
    return tmp_path


def serve_again(settings, directory) -> None:
    """Rebuild the registry over `directory`, so that a card changed there is read again."""
    settings.MODEL_ARTIFACTS_DIR = directory


@pytest.mark.parametrize(("probability", "band"), [
    (0.0, "low"), (0.1999, "low"), (0.2, "moderate"), (0.4999, "moderate"), (0.5, "high"), (1.0, "high")])
def test_a_risk_is_low_under_20_percent_moderate_from_20_and_high_from_50(settings, monkeypatch, probability, band):
    """The shipped diabetes artifact, its model answering the probability the test sets."""
    settings.MODEL_RUNTIME_OVERRIDES = {"xgboost_tabular": f"{ScriptedTabular.__module__}.ScriptedTabular"}
    monkeypatch.setattr(ScriptedTabular, "probability", probability)
    result = run_tabular(diabetes_request()).result
    assert result["risk_band"] == band and result["probability"] == probability


def test_a_form_answer_names_only_inputs_it_was_given_as_factors():
    """Unknown glucose is among the real model's largest contributions (the value goes down a
    default branch), yet "glucose (not given) raised the risk" would blame a blank."""
    request = diabetes_request()
    model = get_loader().get("diabetes")
    raw = model.predict(TABULAR_SCHEMAS["diabetes"].encode(request.values)).contributions
    assert "glucose" in sorted(raw, key=lambda name: abs(raw[name]), reverse=True)[:3]
    answer = run_tabular(request)
    named = [factor["feature"] for factor in answer.result["factors"]]
    assert len(named) == 3 and not UNKNOWN & set(named)
    assert all(factor["value"] is not None and factor["text"].endswith(f"{factor['direction']} the risk")
               for factor in answer.result["factors"])
    assert (answer.result["inputs_known"], answer.result["inputs_total"]) == (4, 8)
    assert answer.model == "diabetes" and answer.version == model.version


def test_an_image_outside_the_validated_domain_gets_no_answer_and_the_form_it_came_with_is_kept_alone(
        django_user_model):
    user = django_user_model.objects.create_user("dr_ada")
    with pytest.raises(OutsideDomain) as refused:
        run_image(other_machines_printout())
    assert refused.value.model == "ecg"
    assert refused.value.message == get_loader().get("ecg").artifact.card["domain"]["message"]
    with pytest.raises(OutsideDomain):  # the submission's own image: nothing is recorded
        predict(user, [other_machines_printout()], source="api")
    assert not Prediction.objects.exists()
    heart = TABULAR_SCHEMAS["heart"]
    # Attached to a heart form (issue 32): the form's estimate, which never uses it, is kept alone, with why
    # the printout was not read.
    record = predict(user, [TabularRequest("heart", heart.validate(heart.from_json(HEART))),
                            other_machines_printout()], source="web")
    assert record.outputs["image_not_read"] == {"model": "ecg", "reason": refused.value.message}
    assert list(Prediction.objects.values_list("model_name", flat=True)) == ["heart"]


def test_a_model_that_cannot_be_loaded_gets_no_answer_and_nothing_is_recorded(django_user_model, tmp_path, settings):
    user = django_user_model.objects.create_user("dr_ada")
    artifacts = shipped_copy(tmp_path, settings, "diabetes", "retina")
    (artifacts / "retina" / "model.onnx").unlink()
    with pytest.raises(ModelUnavailable):
        predict(user, [diabetes_request(), fundus_request()], source="web")
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("section", ["decision", "domain"])
def test_an_image_model_whose_card_lacks_its_rules_gives_no_answer(django_user_model, tmp_path, settings, section):
    """No decision thresholds or no validated domain on the card: nothing to answer by."""
    user = django_user_model.objects.create_user("dr_ada")
    artifacts = shipped_copy(tmp_path, settings, "retina")
    rewrite_card(artifacts, "retina", lambda card: card.pop(section))
    with pytest.raises(ModelUnavailable, match=section):
        predict(user, [fundus_request()], source="api")
    assert not Prediction.objects.exists()


def test_an_attached_image_is_recorded_with_its_form_under_one_reference(django_user_model):
    user = django_user_model.objects.create_user("dr_ada")
    photo = fundus_request()
    parent = predict(user, [diabetes_request(), photo], source="web", reference="bay 3")
    assert Prediction.objects.count() == 2
    parent.refresh_from_db()
    (child,) = parent.attachments.all()
    assert (parent.model_name, parent.reference, parent.parent, parent.user, parent.source) == (
        "diabetes", "bay 3", None, user, "web")
    assert (child.model_name, child.reference, child.user, child.source) == ("retina", "", user, "web")
    assert child.inputs == {"image": photo.image.record()}  # its fingerprint, never its pixels
    assert child.outputs["label"] in child.outputs["probabilities"]
    assert parent.outputs["risk_band"] in ("low", "moderate", "high")
    assert child.model_version == get_loader().get("retina").version


def test_an_attached_image_that_cannot_be_recorded_takes_its_form_with_it(django_user_model):
    """The two rows are written in one transaction: the second refused, the first is not kept."""
    user = django_user_model.objects.create_user("dr_ada")

    def refuse_attachments(sender, instance, **kwargs) -> None:
        if instance.parent_id is not None:
            raise RuntimeError("the database refused the attachment")

    pre_save.connect(refuse_attachments, sender=Prediction, dispatch_uid="tests.refuse_attachments")
    try:
        with pytest.raises(RuntimeError, match="refused the attachment"):
            predict(user, [diabetes_request(), fundus_request()], source="web", reference="bay 3")
    finally:
        pre_save.disconnect(sender=Prediction, dispatch_uid="tests.refuse_attachments")
    assert not Prediction.objects.exists()


def test_the_referral_call_is_made_by_the_cards_decision_thresholds(tmp_path, settings):
    """The real model's P(grade >= 2) for a real photo, placed above, between and below the card's
    two thresholds by changing the card alone: referable, uncertain (no call), not referable."""
    referable = run_image(fundus_request()).result["referable_probability"]
    assert 0 < referable < 1
    labels = get_loader().get("retina").labels
    artifacts = shipped_copy(tmp_path, settings, "retina")
    placements = {  # (not_referable_below, referable_threshold) -> (referable_dr, uncertain)
        (referable / 4, referable / 2): (True, False),
        (referable / 2, (1 + referable) / 2): (None, True),
        ((1 + referable) / 2, (3 + referable) / 4): (False, False),
    }
    for (below, threshold), (call, uncertain) in placements.items():
        rewrite_card(artifacts, "retina", lambda card: card["decision"].update(
            not_referable_below=below, referable_threshold=threshold))
        serve_again(settings, artifacts)
        result = run_image(fundus_request()).result
        assert result["referable_probability"] == referable
        assert (result["referable_dr"], result["uncertain"]) == (call, uncertain), (below, threshold)
        assert (result["not_referable_below"], result["referable_threshold"]) == (below, threshold)
        # The most likely single grade is reported beneath the call, whichever way it points.
        assert result["grade"] == result["class_index"] and result["label"] == labels[result["grade"]]


def test_an_ecg_finding_is_uncertain_under_the_cards_threshold(tmp_path, settings):
    """The real model's confidence in a real printout, placed either side of the card's
    `uncertain_below` by changing the card alone."""
    printout = decode(ecg_printout(), **LIMITS)
    confidence = run_image(ImageRequest("ecg", printout)).result["confidence"]
    artifacts = shipped_copy(tmp_path, settings, "ecg")
    for below, uncertain in (((1 + confidence) / 2, True), (confidence / 2, False)):
        rewrite_card(artifacts, "ecg", lambda card: card["decision"].update(uncertain_below=below))
        serve_again(settings, artifacts)
        result = run_image(ImageRequest("ecg", printout)).result
        assert result["confidence"] == confidence
        assert (result["uncertain"], result["uncertain_below"]) == (uncertain, below)
        assert "referable_dr" not in result
