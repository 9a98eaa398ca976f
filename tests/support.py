"""What more than one test module needs: paths and samples, the forms and API calls a test
makes, scripted runtimes, readers of the pages, and the probes of a real server.

Test modules import helpers from here (and from databases.py and page_text.py), never from
one another. The project's modules are imported inside the helpers that use them, so importing
this one loads neither the training libraries nor the site's models.
"""
from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pytest
from PIL import Image

from .page_text import page_text

if TYPE_CHECKING:
    from django.http import HttpResponse
    from django.test import Client

    from bench.harness import Site
    from predictors.serving.registry import LoadedModel, ModelLoader
    from predictors.training.real_images import LabelledImage

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
TEST_ARTIFACTS = ROOT / "var" / "test-artifacts"
SHIPPED = ROOT / "predictors" / "artifacts"
MODELS = ("diabetes", "heart", "retina", "ecg")


def sample(*parts: str) -> Path:
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"missing shared sample {path}")
    return path


def sample_names(kind: str) -> list[str]:
    """The files of ../shared/samples/<kind>, each a case of the tests parametrized over them."""
    return sorted(p.name for p in (SAMPLES / kind).iterdir())


# --- images -------------------------------------------------------------------------------

# Decoding limits for the samples, and for the labelled photos of ../shared/data (some are large).
LIMITS = {"max_bytes": 10_000_000, "max_pixels": 40_000_000}
DATA_LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}
# The rows of each data set's labels.csv. A test that loops over the photos checks the count
# first, so a data set that is missing or cut short fails it instead of passing it empty.
DATA_SET_SIZES = {"fundus": 455, "ecg": 443}
# Labelled photos that cannot be graded as taken, and are refused as blurred: this one is a
# haemorrhage or opacity over much of the field, with a bright reflex; its fine detail is below
# that of a blur past the gradable limit (predictors.images.quality.FUNDUS_GRADABLE_BLUR), so no
# floor answers it without answering such blur too (issue 30). A screening grader would call
# it ungradable and have the eye examined.
UNGRADABLE_AS_TAKEN = {"IDRiD_train_081.jpg"}


def labelled_photos(kind: str) -> list[LabelledImage]:
    """The labelled photos of ../shared/data ("fundus" or "ecg"), all of them or the test fails."""
    from predictors.training import real_images

    items = real_images.fundus_images() if kind == "fundus" else real_images.ecg_images()
    if len(items) != DATA_SET_SIZES[kind]:
        pytest.fail(f"{len(items)} labelled {kind} photos in ../shared/data, not {DATA_SET_SIZES[kind]}")
    return items


def fundus_photo() -> Image.Image:
    """A real fundus photo of the data set, as taken."""
    return Image.open(labelled_photos("fundus")[3].path)


def ecg_printout(index: int = 0) -> bytes:
    """A printout from the ECG model's own machine, one of its held-out test photos as taken:
    inside the domain it was validated on, so it is answered (other machines' printouts in
    ../shared/samples/ecg are refused: tests/test_validated_domain.py)."""
    from predictors.training import real_images

    test_files = json.loads((SHIPPED / "ecg" / "card.json").read_text())["data"]["test_files"]
    return (real_images.data_root() / test_files[index]).read_bytes()


def ecg_page_photo() -> Image.Image:
    """A real ECG printout of the data set, as taken."""
    return Image.open(labelled_photos("ecg")[5].path)


def dark_fundus() -> bytes:
    """A fundus photo taken with a tenth of the light: too dark to grade."""
    from predictors.training import captures

    return captures.recapture(fundus_photo(), captures.Capture("brightness", 0.1, captures.BOTH), seed=0)


def blurred_ecg() -> bytes:
    """An ECG printout photographed with a shaking hand: too blurred to read."""
    from predictors.training import captures

    return captures.recapture(ecg_page_photo(), captures.Capture("blur", 5, captures.BOTH), seed=0)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def named_upload(data: bytes, name: str = "upload.jpg") -> io.BytesIO:
    """Bytes as the test client sends a chosen file."""
    upload = io.BytesIO(data)
    upload.name = name
    return upload


# --- forms and the API ----------------------------------------------------------------------

DIABETES_FORM = {"pregnancies": "2", "glucose": "168", "blood_pressure": "72", "skin_thickness": "",
                 "insulin": "", "bmi": "35.1", "diabetes_pedigree": "0.52", "age": "45"}
HEART_FORM = {"age": "61", "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": "140",
              "cholesterol": "", "fasting_blood_sugar_gt_120": "", "resting_ecg": "lv_hypertrophy",
              "max_heart_rate": "120", "exercise_angina": "yes", "st_depression": "2", "st_slope": "flat",
              "major_vessels": "", "thal": "reversible_defect"}
# Only the three required findings and resting blood pressure: 4 of 13.
SPARSE_HEART = {**{name: "" for name in HEART_FORM}, "age": "61", "sex": "male",
                "chest_pain_type": "asymptomatic", "resting_bp": "140"}


def post_json(client: Client, model: str, body: Any, token: str, raw: bool = False) -> HttpResponse:
    """An API call with a JSON body (`raw`: the body sent as given, bytes or text)."""
    data = body if raw else json.dumps(body)
    return client.post(f"/api/v1/predict/{model}", data, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token}")


def post_image(client: Client, model: str, content: bytes | None, token: str, name: str = "upload.png",
               field: str = "image") -> HttpResponse:
    """An API call with a file upload (none when `content` is None)."""
    files = {} if content is None else {field: io.BytesIO(content)}
    if content is not None:
        files[field].name = name
    return client.post(f"/api/v1/predict/{model}", files, HTTP_AUTHORIZATION=f"Token {token}")


def assert_error(response: HttpResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the API's one error shape and status (and code); the error, for what a test asks more of it."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


# --- scripted models and model cards ----------------------------------------------------------

class ScriptedTabular:
    """A tabular runtime that answers with the contributions a test sets."""

    probability = 0.9
    contributions: dict[str, float] = {}
    size_bytes = 1

    @classmethod
    def load(cls, artifact, options):
        return cls()

    def predict(self, features):
        return SimpleNamespace(probability=self.probability, contributions=dict(self.contributions), baseline=0.0)


class ScriptedImage:
    """An image runtime that answers with the class probabilities a test sets."""

    probabilities: list[float] = []
    size_bytes = 1

    @classmethod
    def load(cls, artifact, options):
        return cls()

    def predict(self, features):
        return SimpleNamespace(probabilities=np.asarray(self.probabilities, dtype=np.float32),
                               activation_map=np.zeros((7, 7), dtype=np.float32), domain_distance=0.0)


# The decision rules in the tests that script image answers: the retina refers from a 50% probability
# of grade 2 or worse, does not refer under 40%, and is uncertain between; an ECG finding is
# "uncertain" under 60%.
DECISION = {"split": "validation", "referable_threshold": 0.5, "not_referable_below": 0.4}
ECG_DECISION = {"split": "validation", "uncertain_below": 0.6, "coverage": 0.7, "accuracy_answered": 0.85}
# A calibration whose validation images bear out probabilities up to 99%, so the scripted answers are shown
# as given (a card's ceiling: predictors/card_pages/evidence.py).
CALIBRATION = {"split": "validation", "images": 100, "temperature": 1.0, "ece_before": 0.01, "ece_after": 0.01,
               "reliability_after": [{"confidence": 0.995, "accuracy": 0.995, "images": 100}]}


def ample_test_set(card: dict) -> None:
    """Twenty test cases of every class, nine in ten found, so a scripted answer carries no note of a
    class with few test cases (predictors/card_pages/evidence.py)."""
    card["metrics"]["served"].update(support={label: 20 for label in card["labels"]},
                                     recall={label: 0.9 for label in card["labels"]})


def rewrite_card(artifacts: Path, name: str, change: Callable[[dict], None]) -> None:
    """Change a model's card in place and re-sign its manifest, as a retrained model would ship it."""
    from predictors.serving.artifacts import write_manifest

    directory = artifacts / name
    card = json.loads((directory / "card.json").read_text())
    change(card)
    (directory / "card.json").write_text(json.dumps(card))
    write_manifest(directory, list(json.loads((directory / "manifest.json").read_text())["files"]))


def cards_in(directory: Path) -> dict[str, dict]:
    return {name: json.loads((directory / name / "card.json").read_text()) for name in MODELS}


def image_probabilities(model: LoadedModel, photo: Path) -> np.ndarray:
    """What a loaded image model answers for a photo, decoded and transformed as the site does."""
    from predictors.images.decode import decode
    from predictors.images.transform import model_input

    image = decode(photo.read_bytes(), **LIMITS).image
    return model.predict(model_input(image, model.artifact.input_spec)).probabilities


def make_loader(directory: Path, budget_mb: int = 1000, retry: float = 0.0,
                inference_url: str | None = None) -> ModelLoader:
    """A registry of its own over `directory`, outside the site's settings; with `inference_url`,
    the image models are served by that Open Inference Protocol server."""
    from predictors.catalogue import IMAGE, MODEL_SPECS
    from predictors.serving.registry import ModelLoader
    from predictors.serving.runtimes import InferenceEndpoint, RuntimeOptions

    endpoints = {name: InferenceEndpoint(inference_url, timeout=60) for name in IMAGE} if inference_url else {}
    return ModelLoader(MODEL_SPECS, directory, budget_mb * 1024 * 1024, retry, RuntimeOptions(endpoints=endpoints))


# --- what a result page shows -------------------------------------------------------------------

def factors_on(page: str) -> list[str]:
    return re.findall(r'<li class="(?:raised|lowered)">([^<]+)</li>', page)


def notes_on(page: str, population: bool = False) -> list[tuple[str, str]]:
    """The caveats on a result page; a model's who-it-learnt-from note only when asked for."""
    from predictors.catalogue import MODEL_SPECS

    notes = [(level, html.unescape(text))
             for level, text in re.findall(r'<p class="note note-(\w+)"[^>]*data-testid="note">([^<]+)</p>', page)]
    said = tuple(spec.population for spec in MODEL_SPECS if spec.population)
    return [note for note in notes if population or not note[1].startswith(said)]


def next_step_on(page: str) -> str:
    """The result's next step, as the page reads."""
    return " ".join(page_text(re.search(r'<p[^>]*data-testid="next-step">.*?</p>', page, re.S).group(0)).split())


def retina_result(client: Client) -> str:
    """The result page of the sample fundus photo."""
    return client.post("/predict/retina/", {"image": sample("fundus", "retina.jpg").open("rb")}).content.decode()


def described_by_ids(page: str) -> tuple[list[str], set[str]]:
    """The ids a page's fields point screen readers to (aria-describedby), and the ids the page has."""
    wanted = [i for value in re.findall(r'aria-describedby="([^"]+)"', page) for i in value.split()]
    return wanted, set(re.findall(r'\bid="([^"]+)"', page))


# --- settings in a process of their own -----------------------------------------------------------

PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 64 + "production-like-key-with-enough-entropy-0123456789",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "healthoracle.onrender.com",
    "RENDER_EXTERNAL_HOSTNAME": "healthoracle.onrender.com",
    "PATH": os.environ["PATH"],
}


def run_python(python: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


# --- a real server (bench.harness.Site) -------------------------------------------------------------

# The strict server (conftest.strict_site): few log-in attempts, a short read timeout.
STRICT_LOGIN_LIMIT = 4
STRICT_READ_TIMEOUT = 3
STRICT_PASSWORD = "correct horse battery staple"
# A probe slower than this means /health/ is blocked, not merely slow on a loaded machine.
PROBE_TIMEOUT = 5.0


def api_error(status: int, body: bytes) -> tuple[int, str]:
    """A served error answer's status and code, once its body has the API's error shape."""
    parsed = json.loads(body)
    assert set(parsed["error"]) == {"code", "message", "fields"}, parsed
    return status, parsed["error"]["code"]


def api_request_error(site: Site, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
                      headers: dict | None = None) -> tuple[int, str]:
    """Send an authenticated request to a served site; the status and error code it answers."""
    sent = {"Authorization": f"Token {site.token}", **(headers or {})}
    if content_type:
        sent["Content-Type"] = content_type
    status, answer, _ = site.request(method, path, body, sent)
    return api_error(status, answer)


def assert_health_answers(site: Site) -> None:
    status, _, _ = site.request("GET", "/health/", timeout=PROBE_TIMEOUT)
    assert status == 200


def model_load_started(pid: int) -> bool:
    """ONNX Runtime is imported only by the registry's load (never at start-up or on /health/),
    so its library in the worker's memory map means an image model load has begun."""
    return "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()


def wait_for_model_load_to_start(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if model_load_started(pid):
            return
        time.sleep(0.005)
    pytest.fail(f"worker {pid} did not start loading a model within {timeout} s")
