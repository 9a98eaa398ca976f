"""A clinician's session in headless Debian Chromium against a live server, on a phone and a desktop.

One test per page or feature, each in a clinician's signed-in browser context of its own
(the `clinician` fixture; one Chromium for the module), since the live server's database
is emptied after each test. Every page is checked for sideways scrolling, for sentences
the model cards' data fields contradict (tests/page_text.py), and by axe-core (installed
by bin/test from tests/browser/package-lock.json) for serious or critical accessibility
violations, and photographed into var/test-artifacts/screenshots/<width>/ (gitignored),
numbered in the order taken, to be looked at. No console error may appear but the 400s of
a refused log-in or upload.
"""
from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from predictors.models import Prediction

from .page_text import contradictions
from .support import MODELS, ROOT, SHIPPED, TEST_ARTIFACTS, ScriptedImage, cards_in, ecg_printout, sample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = TEST_ARTIFACTS / "screenshots"
# Chromium's own network chatter would only hit this machine's closed network.
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
NARROWEST_PHONE = {"width": 360, "height": 740}  # the narrowest phones in use
PASSWORD = "a long enough password 1"
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# Run in the page by the DevTools protocol, which the Content-Security-Policy does not govern.
AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
}"""


# The elements matching a selector whose text runs over more than one line, with their line count.
LINES_OF = """(selector) => Object.fromEntries([...document.querySelectorAll(selector)].map(element => {
    const range = document.createRange();
    range.selectNodeContents(element);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    return [element.textContent.trim(), tops.size];
}).filter(([, lines]) => lines > 1))"""


# Screenshots are numbered per width in the order they are taken, across the module's tests.
SHOT_NUMBERS: dict[Path, Iterator[int]] = {}


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    """One headless Chromium for the module's tests; each test opens its own context in it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed; bin/test installs it")
    if not AXE.exists():
        pytest.fail("axe-core is not installed; bin/test installs it (npm ci --prefix tests/browser)")
    # Playwright drives its event loop on this thread; the ORM calls of the tests happen around it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone", "desktop"])
def viewport(request) -> dict[str, int]:
    return request.param


class Walk:
    """One viewport's pages: each visit checks the width, the words and accessibility, and keeps a screenshot."""

    def __init__(self, page, base_url: str, viewport: dict[str, int], cards: dict[str, dict], scripts: bool = True):
        self.page = page
        self.scripts = scripts
        self.base_url = base_url
        self.cards = cards  # what the pages' sentences are held to
        self.folder = SCREENSHOTS / str(viewport["width"])
        self.folder.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        overflow = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert overflow[0] <= overflow[1], f"{name}: the page scrolls sideways ({overflow[0]} > {overflow[1]} px)"
        assert contradictions(self.page.inner_text("body"), self.cards) == [], name
        if self.scripts:  # axe-core needs the page's timers, which do not run with JavaScript off
            if not self.page.evaluate("typeof axe !== 'undefined'"):
                self.page.evaluate(AXE.read_text())
            assert self.page.evaluate(AXE_RUN) == [], name
        path = self.keep(f"{name}.png")
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000

    def keep(self, name: str) -> Path:
        """Where to keep a picture of this width: numbered after the ones taken before it."""
        number = next(SHOT_NUMBERS.setdefault(self.folder, itertools.count(1)))
        return self.folder / f"{number:02d}-{name}"

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self) -> None:
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base_url}/")


@pytest.fixture
def visitor(live_server, artifacts, django_user_model, chromium, viewport) -> Iterator[Walk]:
    """A browser context of the test's viewport, not signed in, for a clinician the site knows.

    Console errors include anything the Content-Security-Policy blocks (scripts, the data:
    thumbnail); the 400s of a failed log-in and a refused upload are expected, nothing else."""
    django_user_model.objects.create_user(username="dr_grace", password=PASSWORD)
    context = chromium.new_context(viewport=viewport)
    walk = Walk(context.new_page(), live_server.url, viewport, cards_in(artifacts))
    errors: list[str] = []
    walk.page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield walk
    context.close()
    assert [e for e in errors if "status of 400" not in e] == []


@pytest.fixture
def clinician(visitor: Walk) -> Walk:
    """The clinician signed in, on the dashboard."""
    visitor.go("/")
    visitor.page.fill("#id_username", "dr_grace")
    visitor.sign_in()
    return visitor


def fill_diabetes_with_photo(page) -> None:
    """Diabetes with a decimal comma, a case reference and a fundus photo."""
    page.fill("#id_case_reference", "Clinic B, slot 3")
    for field, value in (("pregnancies", "3"), ("glucose", "172"), ("bmi", "36,2"), ("diabetes_pedigree", "0,6"),
                         ("age", "52")):
        page.fill(f"#id_{field}", value)
    page.set_input_files("#id_retina_image", str(sample("fundus", "retina.jpg")))


def predict_diabetes_with_photo(walk: Walk) -> None:
    walk.go("/predict/diabetes/")
    fill_diabetes_with_photo(walk.page)
    walk.page.click("button:has-text('Predict')")
    walk.page.wait_for_selector("[data-testid=probability]")


def predict_heart_from_four_findings(walk: Walk) -> None:
    walk.go("/predict/heart/")
    walk.page.fill("#id_age", "63")
    walk.page.select_option("#id_sex", "male")
    walk.page.select_option("#id_chest_pain_type", "typical_angina")
    walk.page.fill("#id_st_depression", "0,5")
    walk.page.click("button:has-text('Predict')")
    walk.page.wait_for_selector("[data-testid=probability]")


def predict_retina(walk: Walk) -> None:
    walk.go("/predict/retina/")
    walk.page.set_input_files("#id_image", str(sample("fundus", "retina.jpg")))
    walk.page.click("button:has-text('Predict')")
    walk.page.wait_for_selector("[data-testid=label]")


def test_a_failed_log_in_keeps_the_username_and_the_fields_line_up(visitor):
    page = visitor.page
    visitor.go("/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dr_grace")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector(".errors")
    assert page.input_value("#id_username") == "dr_grace"
    boxes = [page.locator(f"#{name}").bounding_box() for name in ("id_username", "id_password")]
    assert boxes[0]["x"] == boxes[1]["x"] and boxes[0]["width"] == boxes[1]["width"]
    visitor.check("login-failed")
    visitor.sign_in()


def test_the_dashboard_shows_four_models_two_by_two_on_a_desktop_and_one_column_on_a_phone(
        clinician, live_server, viewport):
    page = clinician.page
    tops = [round(box["y"]) for box in (card.bounding_box() for card in page.locator(".models > li").all())]
    assert len(tops) == 4
    assert sorted(tops.count(y) for y in set(tops)) == ([2, 2] if viewport is DESKTOP else [1, 1, 1, 1])
    assert page.locator("text=Ready").count() == 4
    assert page.context.request.get(f"{live_server.url}/favicon.ico").status == 200
    clinician.check("dashboard")


def test_diabetes_with_a_decimal_comma_a_reference_and_a_photo_is_busy_while_it_works(clinician, live_server):
    page = clinician.page
    clinician.go("/predict/diabetes/")
    fill_diabetes_with_photo(page)
    clinician.check("diabetes-form")
    busy = page.evaluate("""() => {
        const form = document.querySelector("form.predict");
        const prevented = [];
        form.addEventListener("submit", (event) => prevented.push(event.defaultPrevented));
        form.requestSubmit();
        form.requestSubmit();  // a second press while the first is on its way
        const button = form.querySelector("button[type=submit]");
        return {prevented, disabled: button.disabled, text: button.textContent,
                note: form.querySelector(".busy-note").textContent};
    }""")
    assert busy == {"prevented": [False, True], "disabled": True, "text": "Predicting…",
                    "note": "Working on it; this can take a few seconds."}
    page.wait_for_selector("[data-testid=probability]")
    record = Prediction.objects.get(parent__isnull=True, model_name="diabetes")
    assert record.inputs["bmi"] == 36.2 and record.inputs["diabetes_pedigree"] == 0.6
    assert page.url == f"{live_server.url}/history/{record.pk}/"  # a reload shows the record, not a re-post
    assert page.evaluate("document.querySelector('[data-testid=thumbnail]').naturalWidth") > 0
    assert "Clinic B, slot 3" in page.inner_text("h1")
    text = page.inner_text("main")
    assert "estimated probability of diabetes" in text and "probability of grade 2 or worse" in text
    assert "Next step:" in text
    clinician.check("diabetes-result")


def test_heart_with_four_findings_of_thirteen_says_so_before_the_number(clinician):
    predict_heart_from_four_findings(clinician)
    assert clinician.page.locator(".note-warning").first.inner_text().startswith("Based on only 4 of 13 findings.")
    assert Prediction.objects.get(model_name="heart").inputs["st_depression"] == 0.5
    clinician.check("heart-result-few-findings")


def fill_heart_from_four_findings(page) -> None:
    page.fill("#id_age", "63")
    page.select_option("#id_sex", "male")
    page.select_option("#id_chest_pain_type", "typical_angina")
    page.fill("#id_st_depression", "0,5")


def test_a_diagnostic_glucose_leads_with_the_criterion_and_no_risk_figure(clinician):
    page = clinician.page
    clinician.go("/predict/diabetes/")
    for field, value in (("pregnancies", "3"), ("glucose", "250"), ("bmi", "36,2"), ("diabetes_pedigree", "0,6"),
                         ("age", "52")):
        page.fill(f"#id_{field}", value)
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=diagnostic]")
    assert page.inner_text("[data-testid=diagnostic]") == "Meets a diagnostic criterion: the risk estimate does not apply"
    assert page.locator(".big[data-testid=probability]").count() == 0
    text = page.inner_text("main")
    assert "at or above 200 mg/dL" in text and "diagnostic threshold" not in text and "high risk" not in text
    clinician.check("diabetes-diagnostic-glucose")


def test_an_infarction_on_the_attached_ecg_leads_the_heart_result_which_says_the_ecg_was_read(clinician, decided):
    decided.setattr(ScriptedImage, "probabilities", [0.02, 0.02, 0.94, 0.02])
    page = clinician.page
    clinician.go("/predict/heart/")
    fill_heart_from_four_findings(page)
    page.set_input_files("#id_ecg_image", {"name": "ecg.jpg", "mimeType": "image/jpeg", "buffer": ecg_printout()})
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=probability]")
    titles = page.locator("section.result h2").all_inner_texts()
    assert titles == ["ECG finding", "Heart disease risk"]
    ecg, heart = (page.locator("section.result").nth(i).bounding_box() for i in (0, 1))
    assert ecg["y"] < heart["y"]
    assert page.inner_text("[data-testid=label]") == "Myocardial Infarction"
    heart_text = page.locator("section.result").nth(1).inner_text()
    assert "was read by the ECG model, which found: Myocardial Infarction. This estimate did not use it" in heart_text
    inputs = page.locator("section.result").nth(1).locator("details.inputs")
    assert inputs.locator("dt").nth(6).text_content() == "Resting ECG"
    assert inputs.locator("dd").nth(6).text_content().startswith("Not typed; the attached 12-lead ECG printout")
    clinician.check("heart-with-ecg-infarction")


def test_a_refused_optional_ecg_still_gives_the_heart_estimate_and_says_why_once(clinician):
    page = clinician.page
    clinician.go("/predict/heart/")
    fill_heart_from_four_findings(page)
    page.set_input_files("#id_ecg_image", str(sample("fundus", "retina.jpg")))
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=probability]")
    text = page.inner_text("main")
    assert text.count("was not read") == 1 and "does not look like an ECG printout" in text
    assert "This estimate is made from the form alone, so it stands without it." in text
    clinician.check("heart-ecg-refused")


def test_the_shipped_image_cards_say_how_far_to_trust_an_answer_before_the_developer_section(clinician, settings):
    page = clinician.page
    show_the_shipped_cards(clinician, settings)
    for name in ("retina", "ecg"):
        clinician.go(f"/models/{name}/")
        for selector in ("[data-testid=trust]", "[data-testid=robustness]", "[data-testid=validated-on]"):
            assert page.locator(selector).is_visible(), (name, selector)
        assert "Not every upload from elsewhere is told" in page.inner_text("[data-testid=validated-on]")
        clinician.check(f"model-card-trust-{name}")


def test_a_file_over_the_limit_is_named_in_the_browser_and_predict_does_not_send_the_form(
        clinician, live_server, settings):
    """Typed values untouched (issue 16 item 5: it used to clear the file, submit, and answer
    "This field is required.")."""
    page = clinician.page
    settings.MAX_UPLOAD_BYTES = 200_000
    clinician.go("/predict/retina/")
    page.fill("#id_case_reference", "Bed 4")
    page.set_input_files("#id_image", files=[{"name": "phone.jpg", "mimeType": "image/jpeg",
                                              "buffer": b"\xff" * 300_000}])
    assert page.locator(".client-error").inner_text().startswith("The file is 293 kB; the limit is 196 kB.")
    assert "id_image_sizeerror" in page.get_attribute("#id_image", "aria-describedby")
    page.click("button:has-text('Predict')")
    assert page.url == f"{live_server.url}/predict/retina/" and "This field is required" not in page.inner_text("main")
    assert page.evaluate("document.activeElement.id") == "id_image"
    assert page.evaluate("document.querySelector('#id_image').files.length") == 1
    assert page.input_value("#id_case_reference") == "Bed 4"
    clinician.check("retina-file-too-large-in-browser")
    page.click("text=Remove the file")
    assert page.evaluate("document.querySelector('#id_image').files.length") == 0
    assert page.locator(".client-error").count() == 0


def test_without_javascript_the_servers_file_error_keeps_the_layout_and_the_values(
        clinician, chromium, live_server, settings, viewport):
    settings.MAX_UPLOAD_BYTES = 200_000
    plain = chromium.new_context(viewport=viewport, java_script_enabled=False,
                                 storage_state=clinician.page.context.storage_state())
    server_side = Walk(plain.new_page(), live_server.url, viewport, clinician.cards, scripts=False)
    page = server_side.page
    server_side.go("/predict/diabetes/")
    for field, value in (("pregnancies", "1"), ("glucose", "150"), ("bmi", "31,5"), ("diabetes_pedigree", "0.4"),
                         ("age", "40")):
        page.fill(f"#id_{field}", value)
    page.set_input_files("#id_retina_image", files=[{"name": "phone.jpg", "mimeType": "image/jpeg",
                                                     "buffer": b"\xff" * 300_000}])
    page.click("button:has-text('Predict')")
    page.wait_for_selector(".field.invalid")
    assert page.locator(".field.invalid").count() == 1
    assert "The file is 293 kB; the limit is 196 kB." in page.inner_text(".field.invalid.file")
    assert page.input_value("#id_bmi") == "31,5" and page.input_value("#id_glucose") == "150"
    assert page.locator("nav >> text=History").is_visible()
    server_side.check("diabetes-file-too-large-on-server")
    plain.close()


def test_the_wrong_kind_of_image_is_refused_in_words(clinician):
    page = clinician.page
    clinician.go("/predict/ecg/")
    page.set_input_files("#id_image", str(sample("fundus", "retina.jpg")))
    page.click("button:has-text('Predict')")
    page.wait_for_selector(".field.invalid")
    assert "does not look like an ECG printout" in page.inner_text("main")
    clinician.check("ecg-wrong-image")


def test_a_retinopathy_answer_leads_and_is_widest_with_the_photo_and_where_the_model_looked_beside_it(
        clinician, viewport):
    """Under it on a phone; no cell or percentage broken across lines."""
    page = clinician.page
    predict_retina(clinician)
    answer, figures = page.locator(".result-body .answer").bounding_box(), page.locator(".figures").bounding_box()
    if viewport is DESKTOP:
        assert answer["width"] > 2 * figures["width"] and figures["x"] > answer["x"] + answer["width"]
    else:
        assert figures["y"] >= answer["y"] + answer["height"]
    assert page.evaluate(LINES_OF, ".probs td, .headline .nowrap") == {}  # one line each: "Moderate NPDR", "> 99%"
    assert page.evaluate("document.querySelector('[data-testid=activation-map]').naturalWidth") > 0
    caption = page.inner_text("[data-testid=activation-caption]")
    assert "cropped to the camera's round field" in caption and "grid" not in caption and "purple" in caption
    assert page.inner_text("[data-testid=next-step]").startswith("Next step:")
    clinician.check("retina-result")


def test_a_printed_result_has_the_inputs_the_answer_its_caveats_the_version_and_the_date_and_no_navigation(
        clinician, viewport):
    page = clinician.page
    predict_retina(clinician)
    assert page.locator("button[data-print]").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("button[data-print]").is_visible()
    for selector in ("details.inputs dl", "[data-testid=decision]", "[data-testid=next-step]", ".result-head time",
                     "text=model version", "footer", "[data-testid=activation-map]", "[data-testid=map-legend]"):
        assert page.locator(selector).first.is_visible(), selector
    pdf = page.pdf(width=f"{viewport['width']}px", print_background=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    clinician.keep("retina-result-printed.pdf").write_bytes(pdf)
    page.screenshot(path=str(clinician.keep("retina-result-print-media.png")), full_page=True)
    page.emulate_media(media="screen")


def test_api_tokens_show_every_column_revoke_included_within_the_screen(clinician, viewport):
    page = clinician.page
    clinician.go("/tokens/")
    page.fill("#id_name", "ward laptop")
    page.click("button:has-text('Create token')")
    page.wait_for_selector("code.key")
    revoke = page.locator("button:has-text('Revoke')").bounding_box()
    assert revoke["x"] + revoke["width"] <= viewport["width"]
    clinician.check("tokens")


def test_history_shows_references_and_attached_results_and_filters_by_model(clinician):
    page = clinician.page
    predict_diabetes_with_photo(clinician)
    predict_heart_from_four_findings(clinician)
    predict_retina(clinician)
    clinician.go("/history/")
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 3
    combined = rows.nth(2).inner_text()
    assert "Clinic B, slot 3" in combined and "Diabetic retinopathy grade" in combined
    assert not re.search(r"\d ms\b", page.inner_text("main"))
    clinician.check("history")
    page.select_option("#id_model", "retina")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r"model=retina"))
    assert page.locator("table.history tbody tr").count() == 2
    clinician.check("history-filtered")


def show_the_shipped_cards(walk: Walk, settings) -> None:
    """The cards as shipped: their pages are what a clinician reads (the quick test builds carry
    the shipped cards' prose without their figures)."""
    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    walk.cards = cards_in(SHIPPED)


def test_the_shipped_model_cards_say_where_each_model_fails_and_keep_developer_detail_collapsed(
        clinician, settings):
    page = clinician.page
    show_the_shipped_cards(clinician, settings)
    for name in MODELS:
        clinician.go(f"/models/{name}/")
        assert page.locator("h2", has_text="Where it fails").is_visible()
        assert not page.locator(".developer .plots").is_visible()  # developer detail: collapsed
        clinician.check(f"model-card-{name}")
        page.click("summary:has-text('For developers')")
        page.wait_for_function("[...document.querySelectorAll('.plots img')].every(i => i.complete && i.naturalWidth)")


@pytest.mark.parametrize("viewport", [NARROWEST_PHONE], ids=["narrowest-phone"])
def test_the_narrowest_phones_show_every_page_whole(clinician, settings):
    predict_diabetes_with_photo(clinician)
    show_the_shipped_cards(clinician, settings)
    record = Prediction.objects.get(parent__isnull=True, model_name="diabetes")
    for name, path in (("dashboard", "/"), ("diabetes-form", "/predict/diabetes/"), ("history", "/history/"),
                       ("result", f"/history/{record.pk}/"), ("model-card-ecg", "/models/ecg/")):
        clinician.go(path)
        clinician.check(name)


# Forms a clinician can fill, and records a clinic can use (issue 32 items 4 and 5).

def test_diabetes_takes_glucose_in_mmol_per_litre_and_a_blank_pedigree(clinician):
    page = clinician.page
    clinician.go("/predict/diabetes/")
    for field, value in (("pregnancies", "1"), ("glucose", "7,8"), ("bmi", "31"), ("age", "44")):
        page.fill(f"#id_{field}", value)
    page.select_option("#id_glucose_unit", "mmol/L")
    box, unit = page.locator("#id_glucose").bounding_box(), page.locator("#id_glucose_unit").bounding_box()
    assert abs(box["y"] - unit["y"]) < 4 and unit["x"] > box["x"]  # the unit beside the number, at both widths
    assert page.locator("text=Clinics do not usually work it out. Leave blank if unknown.").is_visible()
    clinician.check("diabetes-form-mmol")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=probability]")
    record = Prediction.objects.get()
    assert record.inputs["glucose"] == 140.5 and record.inputs["diabetes_pedigree"] is None
    page.click("summary:has-text('What the model was given')")
    assert page.locator("text=7.8 mmol/L (140.5 mg/dL)").is_visible()
    clinician.check("diabetes-result-mmol")


def test_a_refused_form_takes_the_focus_to_one_alert_that_links_each_field(clinician):
    page = clinician.page
    clinician.go("/predict/diabetes/")
    page.fill("#id_pregnancies", "1")
    page.fill("#id_glucose", "1000")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("#error-summary")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator("[role=alert]").count() == 1
    assert page.locator("#error-summary a").all_inner_texts() == [
        "Glucose: Enter a value between 40 and 400 mg/dL.", "Age (years): This field is required."]
    clinician.check("diabetes-form-errors")
    page.click("#error-summary a >> nth=1")
    assert page.evaluate("document.activeElement.id") == "id_age"


def test_the_heart_form_asks_for_vessels_as_an_angiography_result_and_says_who_it_learnt_from(clinician):
    page = clinician.page
    clinician.go("/predict/heart/")
    assert page.locator("label[for=id_major_vessels]").inner_text() == (
        "Vessels with narrowing on angiography (0–3), if an angiogram was done")
    clinician.check("heart-form")
    predict_heart_from_four_findings(clinician)
    assert page.locator(".note-caution", has_text="already referred for coronary angiography").is_visible()


def test_history_flags_a_referable_eye_and_an_mi_in_words_and_says_where_each_came_from(clinician, viewport):
    from .test_history import REFERABLE_EYE, finding

    page = clinician.page
    user = Prediction._meta.get_field("user").related_model.objects.get(username="dr_grace")
    for model, outputs, source in (("retina", REFERABLE_EYE, "web"), ("ecg", finding("Myocardial Infarction"), "api"),
                                   ("ecg", finding("Normal"), "web")):
        Prediction.objects.create(user=user, model_name=model, model_version="v", inputs={}, outputs=outputs,
                                  latency_ms=1, source=source)
    clinician.go("/history/")
    flags = page.locator("[data-testid=flag]")
    assert flags.all_inner_texts() == ["FLAG: MI", "FLAG: REFERABLE RETINOPATHY"]  # newest first, in capitals
    assert all(flags.nth(i).is_visible() for i in range(flags.count()))
    assert page.locator("[data-testid=source]").all_inner_texts() == ["Web form", "API", "Web form"]
    # Named by model and finding; the probability beside it is no higher than the card bears out.
    link = page.get_by_role("link", name=re.compile(r"^ECG finding: Myocardial Infarction · "))
    assert link.is_visible()
    right = max(box["x"] + box["width"] for box in (cell.bounding_box() for cell in
                                                    page.locator("[data-testid=source]").all()))
    assert right <= viewport["width"]
    clinician.check("history-flags")


def test_a_result_opened_again_says_at_the_top_that_the_image_and_map_were_not_kept(clinician):
    page = clinician.page
    predict_retina(clinician)
    assert page.locator("[data-testid=not-kept]").count() == 0
    page.reload()
    page.wait_for_selector("[data-testid=label]")
    notice = page.locator("[data-testid=not-kept]")
    assert notice.is_visible() and notice.bounding_box()["y"] < page.locator("section.result").bounding_box()["y"]
    clinician.check("retina-result-revisited")


def test_the_map_enlarges_from_the_keyboard_and_its_alt_says_where_the_model_looked(clinician):
    page = clinician.page
    predict_retina(clinician)
    alt = page.get_attribute("[data-testid=activation-map]", "alt")
    assert alt.startswith("Where the model looked, on the photo as the model was given it: strongest ")
    assert "purple" not in alt
    before = page.locator("[data-testid=activation-map]").bounding_box()["width"]
    assert page.locator("[data-testid=map-legend] svg").bounding_box()["width"] == pytest.approx(before, abs=1)
    assert page.inner_text("[data-testid=map-legend]").split() == ["less", "evidence", "more", "evidence"]
    page.focus("[data-enlarge]")
    page.keyboard.press("Enter")
    assert page.get_attribute("[data-enlarge]", "aria-expanded") == "true"
    enlarged = page.locator("[data-testid=activation-map]").bounding_box()["width"]
    assert enlarged > before * 1.2, "the map enlarged"
    assert page.locator("[data-testid=map-legend] svg").bounding_box()["width"] == pytest.approx(enlarged, abs=1)
    clinician.check("retina-map-enlarged")
    page.keyboard.press("Enter")
    assert page.get_attribute("[data-enlarge]", "aria-expanded") == "false"


def test_a_printed_result_names_the_site_the_clinician_and_the_time_and_prints_no_link(clinician, viewport):
    page = clinician.page
    predict_retina(clinician)
    assert not page.locator("[data-testid=print-site]").is_visible()  # on screen the header names the site
    page.emulate_media(media="print")
    assert page.locator("[data-testid=print-site]").inner_text() == "HealthOracle"
    assert page.locator("[data-testid=print-clinician]").inner_text() == "· Clinician: dr_grace"
    assert page.locator(".result-head time").is_visible()
    assert [a.inner_text() for a in page.locator("main a, footer a").all() if a.is_visible()] == []
    pdf = page.pdf(width=f"{viewport['width']}px", print_background=True)
    clinician.keep("retina-result-printed-header.pdf").write_bytes(pdf)
    page.screenshot(path=str(clinician.keep("retina-result-print-header.png")), full_page=True)
    page.emulate_media(media="screen")
