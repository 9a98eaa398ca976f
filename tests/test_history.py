"""A clinician's history (predictors/selectors.py and its page): own records, newest first, filtered
and paginated, with the case reference and the attached result."""
from __future__ import annotations

import datetime
import html
import re

import pytest

from predictors.models import Prediction

from .support import DIABETES_FORM, described_by_ids, sample

pytestmark = pytest.mark.django_db


def make(user, model, created, reference="", parent=None, outputs=None):
    return Prediction.objects.create(
        user=user, model_name=model, model_version="2026.11.23-abc", inputs={}, latency_ms=123.4, created=created,
        reference=reference, parent=parent,
        outputs=outputs or {"label": "Normal", "confidence": 0.9, "probabilities": {"Normal": 0.9}})


def rows_on(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<td class="when"[^>]*><a href="/history/(\d+)/"', page)]


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


def test_history_shows_reference_and_attached_result_without_technical_columns(logged_in, artifacts):
    data = {**DIABETES_FORM, "case_reference": "Clinic B, slot 3", "retina_image": sample("fundus", "retina.jpg").open("rb")}
    assert logged_in.post("/predict/diabetes/", data).status_code == 200
    parent = Prediction.objects.get(parent__isnull=True)
    assert parent.reference == "Clinic B, slot 3" and parent.attachments.get().reference == ""
    page = logged_in.get("/history/").content.decode()
    row = page[page.index("<tbody>"):page.index("</tbody>")]
    assert "Clinic B, slot 3" in row and "Diabetic retinopathy grade" in row
    assert parent.attachments.get().outputs["label"] in row
    assert parent.model_version not in page and " ms" not in page and "Latency" not in page
    assert 'class="when"' in row  # the date cell, kept on one line by the style sheet
    form = logged_in.get("/predict/diabetes/").content.decode()
    assert "Never a patient&#x27;s name" in form or "Never a patient's name" in form


def test_history_filters_by_model_date_and_reference(logged_in, clinician):
    day = datetime.datetime(2026, 5, 10, 12, tzinfo=datetime.timezone.utc)
    combined = make(clinician, "diabetes", day, "Bed 4", outputs={"probability": 0.3, "risk_band": "moderate"})
    make(clinician, "retina", day, parent=combined, outputs={"label": "Mild NPDR", "confidence": 0.7})
    retina = make(clinician, "retina", day - datetime.timedelta(days=3), "Bed 9")
    ecg = make(clinician, "ecg", day + datetime.timedelta(days=2), "bed 4 review")
    assert rows_on(logged_in.get("/history/?model=retina").content.decode()) == [combined.pk, retina.pk]
    assert rows_on(logged_in.get("/history/?model=ecg").content.decode()) == [ecg.pk]
    assert rows_on(logged_in.get("/history/?since=2026-05-08&until=2026-05-11").content.decode()) == [combined.pk]
    assert rows_on(logged_in.get("/history/?reference=bed+4").content.decode()) == [ecg.pk, combined.pk]
    empty = logged_in.get("/history/?model=heart").content.decode()
    assert "No predictions match these filters" in empty
    backwards = logged_in.get("/history/?since=2026-05-11&until=2026-05-01").content.decode()
    assert "The end date is before the start date." in backwards


def test_history_pages_keep_the_filters(logged_in, clinician):
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    for hour in range(25):
        make(clinician, "ecg", start + datetime.timedelta(hours=hour))
    make(clinician, "retina", start)
    page = logged_in.get("/history/?model=ecg").content.decode()
    assert 'href="?model=ecg&amp;since=&amp;until=&amp;reference=&amp;page=2"' in page or \
        re.search(r'href="\?[^"]*model=ecg[^"]*page=2"', page)
    assert len(rows_on(logged_in.get("/history/?model=ecg&page=2").content.decode())) == 5


def test_a_reversed_date_filter_lists_nothing_under_its_error(logged_in, clinician):
    make(clinician, "ecg", datetime.datetime(2026, 5, 5, tzinfo=datetime.timezone.utc))
    page = logged_in.get("/history/?since=2026-05-11&until=2026-05-01").content.decode()
    assert "The end date is before the start date." in page and rows_on(page) == []
    assert "Correct the filters above" in page
    assert len(rows_on(logged_in.get("/history/").content.decode())) == 1


def test_history_filter_errors_are_described(logged_in):
    page = logged_in.get("/history/?since=2026-05-11&until=2026-05-01").content.decode()
    wanted, ids = described_by_ids(page)
    assert "id_until_error" in wanted and set(wanted) <= ids


# Rows a clinic can use (issue 32 item 5): named by model and finding, flagged in words, with their source.

REFERABLE_EYE = {"label": "Moderate NPDR", "grade": 2, "confidence": 0.6, "referable_probability": 0.87,
                 "referable_dr": True, "uncertain": False, "referable_threshold": 0.5, "not_referable_below": 0.4,
                 "probabilities": {"No DR": 0.1, "Mild NPDR": 0.03, "Moderate NPDR": 0.6, "Severe NPDR": 0.17,
                                   "Proliferative DR": 0.1}}


def finding(label: str) -> dict:
    return {"label": label, "confidence": 0.9, "uncertain": False, "uncertain_below": 0.5,
            "probabilities": {label: 0.9, "Abnormal heartbeat" if label == "Normal" else "Normal": 0.1}}


def test_history_rows_name_model_and_finding_flag_referable_eyes_and_mi_in_words_and_give_the_source(
        logged_in, clinician):
    day = datetime.datetime(2026, 5, 10, 12, tzinfo=datetime.timezone.utc)
    eye = make(clinician, "retina", day, outputs=REFERABLE_EYE)
    infarct = make(clinician, "ecg", day + datetime.timedelta(hours=1), outputs=finding("Myocardial Infarction"))
    old_infarct = make(clinician, "ecg", day + datetime.timedelta(hours=2), outputs=finding("History of MI"))
    normal = make(clinician, "ecg", day + datetime.timedelta(hours=3), outputs=finding("Normal"))
    Prediction.objects.filter(pk=infarct.pk).update(source="api")
    page = html.unescape(logged_in.get("/history/").content.decode())
    rows = dict(zip(rows_on(page), re.findall(r"<tr>(.*?)</tr>", page[page.index("<tbody>"):], re.S)))
    link = r'<a href="/history/{}/">([^<]+)</a>'
    assert re.search(link.format(eye.pk), rows[eye.pk].split('class="when"')[1].split("</td>", 1)[1]).group(1) == (
        "Diabetic retinopathy grade: Referable diabetic retinopathy · 87% · most likely grade Moderate NPDR")
    assert re.search(link.format(infarct.pk), rows[infarct.pk].split("</td>", 1)[1]).group(1) == (
        "ECG finding: Myocardial Infarction · 90%")
    flags = {pk: re.findall(r'data-testid="flag">([^<]+)<', row) for pk, row in rows.items()}
    assert flags == {eye.pk: ["Flag: referable retinopathy"], infarct.pk: ["Flag: MI"],
                     old_infarct.pk: ["Flag: MI (history)"], normal.pk: []}
    sources = {pk: re.search(r'data-testid="source">([^<]+)<', row).group(1) for pk, row in rows.items()}
    assert sources == {eye.pk: "Web form", infarct.pk: "API", old_infarct.pk: "Web form", normal.pk: "Web form"}
    assert "<th scope=\"col\">Source</th>" in page


def test_an_uncertain_eye_is_not_flagged_as_referable(logged_in, clinician):
    make(clinician, "retina", datetime.datetime(2026, 5, 10, tzinfo=datetime.timezone.utc),
         outputs={**REFERABLE_EYE, "uncertain": True, "referable_dr": None})
    page = logged_in.get("/history/").content.decode()
    assert 'data-testid="flag"' not in page and "Uncertain: needs a human read" in page
