"""A clinician's session in headless Debian Chromium against a live server, on a phone and a desktop.

Every page is checked for sideways scrolling, for sentences the model cards' data fields
contradict (tests/page_text.py), and by axe-core (installed by bin/test from
tests/browser/package-lock.json) for serious or critical accessibility violations, and
photographed into var/test-artifacts/screenshots/<width>/ (gitignored), to be looked at.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from predictors.models import Prediction

from .page_text import contradictions
from .support import MODELS, ROOT, SHIPPED, TEST_ARTIFACTS, cards_in, sample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = TEST_ARTIFACTS / "screenshots"
# Chromium's own network chatter would only hit this machine's closed network.
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
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


@pytest.fixture
def chromium(monkeypatch):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed; bin/test installs it")
    if not AXE.exists():
        pytest.fail("axe-core is not installed; bin/test installs it (npm ci --prefix tests/browser)")
    # Playwright drives its event loop on this thread; the ORM calls below happen around it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Walk:
    """One viewport's pages: each visit checks the width, the words and accessibility, and keeps a screenshot."""

    def __init__(self, page, base_url: str, viewport: dict[str, int], cards: dict[str, dict], scripts: bool = True):
        self.page = page
        self.scripts = scripts
        self.base_url = base_url
        self.cards = cards  # what the pages' sentences are held to
        self.folder = SCREENSHOTS / str(viewport["width"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def check(self, name: str) -> None:
        overflow = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert overflow[0] <= overflow[1], f"{name}: the page scrolls sideways ({overflow[0]} > {overflow[1]} px)"
        assert contradictions(self.page.inner_text("body"), self.cards) == [], name
        if self.scripts:  # axe-core needs the page's timers, which do not run with JavaScript off
            if not self.page.evaluate("typeof axe !== 'undefined'"):
                self.page.evaluate(AXE.read_text())
            assert self.page.evaluate(AXE_RUN) == [], name
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_clinician_session(live_server, artifacts, django_user_model, chromium, settings, viewport):
    django_user_model.objects.create_user(username="dr_grace", password=PASSWORD)
    context = chromium.new_context(viewport=viewport)
    walk = Walk(context.new_page(), live_server.url, viewport, cards_in(artifacts))
    page = walk.page
    # Console errors include anything the Content-Security-Policy blocks (scripts, the data: thumbnail).
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # Login: a failed attempt keeps the username; fields line up.
    walk.go("/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dr_grace")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector(".errors")
    assert page.input_value("#id_username") == "dr_grace"
    boxes = [page.locator(f"#{name}").bounding_box() for name in ("id_username", "id_password")]
    assert boxes[0]["x"] == boxes[1]["x"] and boxes[0]["width"] == boxes[1]["width"]
    walk.check("login-failed")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Dashboard: four models, two by two on a desktop, one column on a phone.
    tops = [round(box["y"]) for box in (card.bounding_box() for card in page.locator(".models > li").all())]
    assert len(tops) == 4
    assert sorted(tops.count(y) for y in set(tops)) == ([2, 2] if viewport is DESKTOP else [1, 1, 1, 1])
    assert page.locator("text=Ready").count() == 4
    assert context.request.get(f"{live_server.url}/favicon.ico").status == 200
    walk.check("dashboard")

    # Diabetes with a decimal comma, a case reference and a fundus photo; busy while it works.
    walk.go("/predict/diabetes/")
    page.fill("#id_case_reference", "Clinic B, slot 3")
    for field, value in (("pregnancies", "3"), ("glucose", "172"), ("bmi", "36,2"), ("diabetes_pedigree", "0,6"),
                         ("age", "52")):
        page.fill(f"#id_{field}", value)
    page.set_input_files("#id_retina_image", str(sample("fundus", "retina.jpg")))
    walk.check("diabetes-form")
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
    walk.check("diabetes-result")

    # Heart with four findings of thirteen: the result says so before the number.
    walk.go("/predict/heart/")
    page.fill("#id_age", "63")
    page.select_option("#id_sex", "male")
    page.select_option("#id_chest_pain_type", "typical_angina")
    page.fill("#id_st_depression", "0,5")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=probability]")
    assert page.locator(".note-warning").first.inner_text().startswith("Based on only 4 of 13 findings.")
    assert Prediction.objects.get(model_name="heart").inputs["st_depression"] == 0.5
    walk.check("heart-result-few-findings")

    # A file over the limit: named in the browser before upload, typed values untouched, and
    # Predict does not send the form without it (issue 16 item 5: it used to clear the file,
    # submit, and answer "This field is required.").
    settings.MAX_UPLOAD_BYTES = 200_000
    walk.go("/predict/retina/")
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
    walk.check("retina-file-too-large-in-browser")
    page.click("text=Remove the file")
    assert page.evaluate("document.querySelector('#id_image').files.length") == 0
    assert page.locator(".client-error").count() == 0

    # The same without JavaScript: the server's form error, in the site's layout, keeps the values.
    plain = chromium.new_context(viewport=viewport, java_script_enabled=False, storage_state=context.storage_state())
    server_side = Walk(plain.new_page(), live_server.url, viewport, walk.cards, scripts=False)
    server_side.count = walk.count
    server_side.go("/predict/diabetes/")
    for field, value in (("pregnancies", "1"), ("glucose", "150"), ("bmi", "31,5"), ("diabetes_pedigree", "0.4"),
                         ("age", "40")):
        server_side.page.fill(f"#id_{field}", value)
    server_side.page.set_input_files("#id_retina_image", files=[{"name": "phone.jpg", "mimeType": "image/jpeg",
                                                                 "buffer": b"\xff" * 300_000}])
    server_side.page.click("button:has-text('Predict')")
    server_side.page.wait_for_selector(".field.invalid")
    assert server_side.page.locator(".field.invalid").count() == 1
    assert "The file is 293 kB; the limit is 196 kB." in server_side.page.inner_text(".field.invalid.file")
    assert server_side.page.input_value("#id_bmi") == "31,5" and server_side.page.input_value("#id_glucose") == "150"
    assert server_side.page.locator("nav >> text=History").is_visible()
    server_side.check("diabetes-file-too-large-on-server")
    walk.count = server_side.count
    plain.close()
    settings.MAX_UPLOAD_BYTES = 10 * 1024 * 1024

    # The wrong kind of image is refused in words.
    walk.go("/predict/ecg/")
    page.set_input_files("#id_image", str(sample("fundus", "retina.jpg")))
    page.click("button:has-text('Predict')")
    page.wait_for_selector(".field.invalid")
    assert "does not look like an ECG printout" in page.inner_text("main")
    walk.check("ecg-wrong-image")

    # A retinopathy photo on its own: the answer leads and is widest, the photo and where the model
    # looked beside it (under it on a phone), no cell or percentage broken across lines.
    walk.go("/predict/retina/")
    page.set_input_files("#id_image", str(sample("fundus", "retina.jpg")))
    page.click("button:has-text('Predict')")
    page.wait_for_selector("[data-testid=label]")
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
    walk.check("retina-result")

    # Printed: the inputs opened, the answer, its caveats, the model version and the date; no navigation.
    assert page.locator("button[data-print]").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("button[data-print]").is_visible()
    for selector in ("details.inputs dl", "[data-testid=decision]", "[data-testid=next-step]", ".result-head time",
                     "text=model version", "footer"):
        assert page.locator(selector).first.is_visible(), selector
    pdf = page.pdf(width=f"{viewport['width']}px", print_background=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    (walk.folder / f"{walk.count + 1:02d}-retina-result-printed.pdf").write_bytes(pdf)
    page.screenshot(path=str(walk.folder / f"{walk.count + 1:02d}-retina-result-print-media.png"), full_page=True)
    page.emulate_media(media="screen")

    # API tokens: every column, Revoke included, within the screen.
    walk.go("/tokens/")
    page.fill("#id_name", "ward laptop")
    page.click("button:has-text('Create token')")
    page.wait_for_selector("code.key")
    revoke = page.locator("button:has-text('Revoke')").bounding_box()
    assert revoke["x"] + revoke["width"] <= viewport["width"]
    walk.check("tokens")

    # History: references, attached results, filters.
    walk.go("/history/")
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 3
    combined = rows.nth(2).inner_text()
    assert "Clinic B, slot 3" in combined and "Diabetic retinopathy grade" in combined
    assert not re.search(r"\d ms\b", page.inner_text("main"))
    walk.check("history")
    page.select_option("#id_model", "retina")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r"model=retina"))
    assert page.locator("table.history tbody tr").count() == 2
    walk.check("history-filtered")

    # The cards as shipped: their pages are what a clinician reads (the quick test builds carry
    # the shipped cards' prose without their figures).
    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    walk.cards = cards_in(SHIPPED)
    for name in MODELS:
        walk.go(f"/models/{name}/")
        assert page.locator("h2", has_text="Where it fails").is_visible()
        assert not page.locator(".developer .plots").is_visible()  # developer detail: collapsed
        walk.check(f"model-card-{name}")
        page.click("summary:has-text('For developers')")
        page.wait_for_function("[...document.querySelectorAll('.plots img')].every(i => i.complete && i.naturalWidth)")
    if viewport is PHONE:  # the narrowest phones in use are 360 px wide
        narrow = Walk(page, live_server.url, {"width": 360}, walk.cards)
        page.set_viewport_size({"width": 360, "height": 740})
        record = Prediction.objects.get(parent__isnull=True, model_name="diabetes")
        for name, path in (("dashboard", "/"), ("diabetes-form", "/predict/diabetes/"), ("history", "/history/"),
                           ("result", f"/history/{record.pk}/"), ("model-card-ecg", "/models/ecg/")):
            narrow.go(path)
            narrow.check(name)
    # The failed log-in's 400 and the refused uploads are expected; nothing else may go wrong.
    assert [e for e in errors if "status of 400" not in e] == []
    context.close()
