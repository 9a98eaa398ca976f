"""A clinician's session in headless Debian Chromium against a live server."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import ROOT, sample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Chromium's own network chatter would only hit this machine's closed network.
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed; bin/test installs it")
    # Playwright drives its event loop on this thread; the ORM calls below happen before it starts.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        yield page
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_clinician_logs_in_predicts_four_ways_and_reviews_history(live_server, artifacts, django_user_model,
                                                                   browser_page):
    django_user_model.objects.create_user(username="dr_grace", password="a long enough password 1")
    page = browser_page
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dr_grace")
    page.fill("#id_password", "a long enough password 1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h2", has_text="Diabetic retinopathy grade").count() == 1
    shot(page, "01-dashboard")

    page.click("nav >> text=Diabetes")
    page.fill("#id_pregnancies", "3")
    page.fill("#id_glucose", "172")
    page.fill("#id_bmi", "36.2")
    page.fill("#id_diabetes_pedigree", "0.6")
    page.fill("#id_age", "52")
    page.set_input_files("#id_retina_image", str(sample("fundus", "retina.jpg")))
    shot(page, "02-diabetes-form")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=probability]")
    text = page.inner_text("main")
    assert "estimated probability of diabetes" in text and "risk" in text
    assert "Referable diabetic retinopathy" in text
    shot(page, "03-diabetes-result")

    page.click("nav >> text=Heart")
    page.fill("#id_age", "63")
    page.select_option("#id_sex", "male")
    page.select_option("#id_chest_pain_type", "typical_angina")
    page.select_option("#id_thal", "fixed_defect")
    page.set_input_files("#id_ecg_image", str(sample("ecg", "stemi_printout.png")))
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=label]")
    text = page.inner_text("main")
    assert "coronary artery disease" in text and "ECG finding" in text
    shot(page, "04-heart-result")

    page.click("nav >> text=ECG")
    page.set_input_files("#id_image", str(sample("fundus", "retina.jpg")))
    page.click("button:has-text('Predict')")
    assert "does not look like an ECG printout" in page.inner_text("main")
    shot(page, "05-ecg-wrong-image")

    page.click("nav >> text=History")
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 2
    assert "Heart disease risk + ECG finding" in rows.nth(0).inner_text()
    rows.nth(1).locator("a").click()
    assert "Diabetic retinopathy grade" in page.inner_text("main")
    shot(page, "06-history-detail")
    assert os.path.getsize(SCREENSHOTS / "06-history-detail.png") > 10_000
