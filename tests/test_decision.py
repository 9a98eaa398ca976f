"""The one decision an image result carries (predictors/decision.py): the referable score, the referral
call and its band, a finding's uncertain rule, a recorded result's call, and the words for them, the
same for training, the site and the model card."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.decision import (NOT_REFERABLE, REFERABLE, UNCERTAIN, UNCERTAIN_WORDS, band_rows, finding_rule_row,
                                 finding_uncertain, is_uncertain, recorded_call, referable_score, referral_call,
                                 referral_rule, refers, rules_out)
from predictors.models import Prediction

from .support import ScriptedImage, post_image, retina_result, sample


def test_the_referable_score_is_the_probability_of_the_referable_grade_or_worse():
    one = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    assert referable_score(one, 2) == pytest.approx(0.7)
    assert referable_score(one, 4) == pytest.approx(0.15)
    split = np.stack([one, np.array([0.6, 0.3, 0.05, 0.05, 0.0])])
    assert referable_score(split, 2) == pytest.approx([0.7, 0.1])


# The band's edges: referable from the threshold itself, not referable only under the lower edge,
# uncertain from the lower edge up to just under the threshold.
@pytest.mark.parametrize("score, call", [
    (0.5, REFERABLE), (0.51, REFERABLE), (0.49, UNCERTAIN), (0.4, UNCERTAIN), (0.39, NOT_REFERABLE), (0.0, NOT_REFERABLE),
    (1.0, REFERABLE),
])
def test_the_referral_call_at_and_beside_the_edges_of_its_band(score, call):
    assert referral_call(score, 0.4, 0.5) == call


def test_training_counts_a_split_by_the_calls_the_site_makes():
    scores = np.array([0.0, 0.39, 0.4, 0.45, 0.49, 0.5, 0.9])
    referred, ruled_out = refers(scores, 0.5), rules_out(scores, 0.4, 0.5)
    calls = [REFERABLE if r else NOT_REFERABLE if n else UNCERTAIN for r, n in zip(referred, ruled_out)]
    assert calls == [referral_call(float(score), 0.4, 0.5) for score in scores]


def test_a_band_with_no_width_has_no_uncertain_call_and_a_referable_call_wins_an_inverted_one():
    assert [referral_call(s, 0.5, 0.5) for s in (0.49, 0.5)] == [NOT_REFERABLE, REFERABLE]
    assert referral_call(0.55, 0.6, 0.5) == REFERABLE  # never both calls at once


@pytest.mark.parametrize("top, uncertain", [(0.59, True), (0.6, False), (0.61, False)])
def test_a_finding_is_uncertain_only_under_its_threshold(top, uncertain):
    assert finding_uncertain(top, 0.6) is uncertain
    assert bool(finding_uncertain(np.array([top]), 0.6)[0]) is uncertain


@pytest.mark.parametrize("outputs, uncertain, call", [
    ({"uncertain": True, "referable_dr": None}, True, UNCERTAIN),
    ({"uncertain": False, "referable_dr": True}, False, REFERABLE),
    ({"uncertain": False, "referable_dr": False}, False, NOT_REFERABLE),
    ({"low_confidence": True, "referable_dr": True}, True, UNCERTAIN),  # recorded before the band
    ({"referable_dr": True}, False, REFERABLE),
])
def test_a_recorded_result_keeps_the_call_it_was_given(outputs, uncertain, call):
    assert is_uncertain(outputs) is uncertain and recorded_call(outputs) == call


def test_the_card_states_the_rule_in_the_words_of_the_result_page():
    assert band_rows(0.4, 0.5, 2) == [("Referable when the probability of grade 2 or worse reaches", "50%"),
                                      ("Not referable when it is under", "40%"), ("Between the two", UNCERTAIN_WORDS)]
    assert band_rows(0.5, 0.5, 3) == [("Referable when the probability of grade 3 or worse reaches", "50%"),
                                      ("Not referable when it is under", "50%")]
    assert finding_rule_row(0.6) == (f"\u201c{UNCERTAIN_WORDS}\u201d when its most likely answer is under", "60%")


@pytest.mark.django_db
def test_a_photo_exactly_at_the_referral_threshold_is_referred_on_the_page_and_by_the_api(logged_in, decided,
                                                                                          api_token, client):
    decided.setattr(ScriptedImage, "probabilities", [0.5, 0.0, 0.25, 0.25, 0.0])  # grades 2-4: exactly 50%
    assert 'data-testid="label">Referable diabetic retinopathy<' in retina_result(logged_in)
    assert Prediction.objects.get().outputs["referable_dr"] is True
    answer = post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token, "retina.jpg").json()
    assert answer["referable_dr"] is True and answer["uncertain"] is False


@pytest.mark.parametrize("outputs, words", [
    ({"referable_threshold": 0.65, "not_referable_below": 0.62},
     "The model refers from 65%, does not refer under 62% and leaves the probabilities between to a human read"),
    ({"referable_threshold": 0.5, "not_referable_below": 0.5}, "The model refers from 50% and does not refer under 50%"),
    ({"referable_threshold": 1.0, "not_referable_below": 0.3},
     "The model never refers, does not refer under 30% and leaves the probabilities between to a human read"),
    ({"referable_threshold": 1.0, "not_referable_below": 0.0},
     "The model makes no referral call on its own: every photo goes to a human read"),
    ({"referable_threshold": 0.65}, "The model refers from 65%"),  # recorded before the band
])
def test_the_referral_rule_is_said_as_recorded_never_as_a_threshold_of_100_or_0_percent(outputs, words):
    assert referral_rule(outputs) == words
