"""Image models on an Open Inference Protocol server (INFERENCE_URL): MLServer started for real on
loopback with what `manage.py write_inference_repository` writes from the shipped artifacts gives
the answers the graph gives in this process; a server that is down, slow, erroring, answering
nonsense or serving another version gives the documented 503, never a 500 and never a hung worker."""
from __future__ import annotations

import http.client
import http.server
import json
import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import yaml

from predictors.catalogue import IMAGE

from ..support import (DATA_LIMITS, HEART_FORM, SHIPPED, assert_error, ecg_printout, make_loader, named_upload,
                       post_image, run_python)

# Ample for a graph on a shared machine; the failure tests set their own.
TIMEOUT = 60


def held_out_photos(model: str) -> list[Path]:
    """The model's held-out test photos, as its card lists them."""
    from predictors.training import real_images

    files = json.loads((SHIPPED / model / "card.json").read_text())["data"]["test_files"]
    assert len(files) > 40
    return [real_images.data_root() / name for name in files]


@pytest.fixture(scope="module")
def model_server() -> Iterator:
    from bench.harness import MODEL_SERVER_BIN, ModelServer

    if not (MODEL_SERVER_BIN / "mlserver").exists():
        pytest.fail("the model server environment .venv-oip is missing; bin/test creates it from requirements-oip.txt")
    server = ModelServer(artifacts=SHIPPED).start()
    yield server
    server.stop()


@pytest.fixture
def remote(settings, model_server):
    """The site on the shipped artifacts, its image models served by the real MLServer."""
    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = model_server.url, list(IMAGE), TIMEOUT
    return model_server


class Engine:
    """A stand-in model server on loopback: describes retina exactly as the real one does, and
    answers inference as a test scripts it (late, with an error, with nonsense)."""

    def __init__(self, metadata: bytes, answer: Callable[[], tuple[int, bytes]], delay: float = 0.0,
                 stalled: bool = False):
        self.inferences = 0
        engine = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if stalled:  # accepts the connection, never answers
                    time.sleep(5)
                elif self.path == "/v2/models/retina":
                    self._send(200, metadata)
                elif self.path == "/v2/models/retina/ready":
                    self._send(200, b"")
                else:
                    self._send(404, b'{"error": "no such model"}')

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                engine.inferences += 1
                time.sleep(delay)
                self._send(*answer())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def metadata_of(server, model: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/v2/models/{model}")
    return connection.getresponse().read()


def fundus_upload() -> bytes:
    return held_out_photos("retina")[0].read_bytes()


# --- the same answers -------------------------------------------------------------------------------

@pytest.mark.parametrize("model", IMAGE)
def test_remote_answers_are_the_local_ones_on_every_test_photo(model, model_server):
    from predictors.images.decode import decode
    from predictors.images.transform import model_input
    from predictors.serving.runtimes.oip_image import RemoteImage

    local = make_loader(SHIPPED).get(model)
    remote = make_loader(SHIPPED, inference_url=model_server.url).get(model)
    assert isinstance(remote.runtime, RemoteImage)
    for photo in held_out_photos(model):
        features = model_input(decode(photo.read_bytes(), **DATA_LIMITS).image, local.artifact.input_spec)
        here, there = local.predict(features), remote.predict(features)
        assert there.probabilities.argmax() == here.probabilities.argmax(), photo.name
        np.testing.assert_allclose(there.probabilities, here.probabilities, rtol=0, atol=1e-5, err_msg=photo.name)
        np.testing.assert_allclose(there.activation_map, here.activation_map, rtol=0, atol=1e-6, err_msg=photo.name)
        assert there.domain_distance == pytest.approx(here.domain_distance, abs=1e-4)


def test_the_api_answers_the_same_with_the_model_on_a_server(client, api_token, settings, remote):
    answered = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
    settings.INFERENCE_URL = ""  # the same upload, the graph in this process
    local = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
    assert answered.status_code == local.status_code == 200, answered.content
    drop = {"prediction_id", "latency_ms"}
    assert ({k: v for k, v in answered.json().items() if k not in drop}
            == {k: v for k, v in local.json().items() if k not in drop})


def test_the_web_process_loads_no_graph_for_a_remote_model(runtime_python, model_server):
    """In the runtime environment, as on Render: both image models answer, and ONNX Runtime was never imported."""
    photos = {"retina": str(held_out_photos("retina")[0]), "ecg": str(held_out_photos("ecg")[0])}
    code = f"""
import json, os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "HealthOracle.settings"
django.setup()
from predictors.images.decode import decode
from predictors.images.transform import model_input
from predictors.serving.registry import get_loader
answers = {{}}
for name, photo in {photos!r}.items():
    model = get_loader().get(name)
    image = decode(open(photo, "rb").read(), max_bytes=50_000_000, max_pixels=60_000_000).image
    answers[name] = float(model.predict(model_input(image, model.artifact.input_spec)).probabilities.sum())
print(json.dumps({{"answers": answers, "onnxruntime": "onnxruntime" in sys.modules}}))
"""
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "MODEL_ARTIFACTS_DIR": str(SHIPPED), "INFERENCE_URL": model_server.url,
           "INFERENCE_TIMEOUT": str(TIMEOUT)}
    result = run_python(runtime_python, code, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == {"retina": pytest.approx(1, abs=1e-4), "ecg": pytest.approx(1, abs=1e-4)}
    assert report["onnxruntime"] is False


# --- honest when the server is away -------------------------------------------------------------------

def down_url() -> str:
    from bench.harness import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_a_server_that_is_down_is_a_503_with_retry_after_and_other_models_keep_working(client, api_token, settings):
    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = down_url(), ["retina"], 2
    started = time.monotonic()
    response = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
    assert time.monotonic() - started < 3
    error = assert_error(response, 503, "model_unavailable")
    assert "model server cannot be reached" in error["message"] and int(response["Retry-After"]) > 0
    ecg = post_image(client, "ecg", ecg_printout(), api_token, name="ecg.jpg")  # still in this process
    assert ecg.status_code == 200, ecg.content


def test_a_page_keeps_the_typed_values_and_the_file_while_the_server_is_down(logged_in, settings, model_server):
    from predictors.models import Prediction

    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = down_url(), ["ecg"], 2
    away = logged_in.post("/predict/heart/", {**HEART_FORM, "ecg_image": named_upload(ecg_printout(), "tracing.jpg")})
    page = away.content.decode()
    assert away.status_code == 503 and int(away["Retry-After"]) > 0
    assert "The ecg model is unavailable right now" in page and "Nothing was recorded" in page
    assert "Your file tracing.jpg is kept" in page and 'name="age" value="61"' in page
    token = re.search(r'name="held_upload" value="([^"]+)"', page).group(1)
    # The server is back: Predict again, choosing no file, and the held one is answered.
    settings.INFERENCE_URL, settings.INFERENCE_TIMEOUT = model_server.url, TIMEOUT
    back = logged_in.post("/predict/heart/", {**HEART_FORM, "held_upload": token})
    assert back.status_code == 200
    assert Prediction.objects.get(model_name="ecg").parent.model_name == "heart"


def test_a_slow_server_times_out_into_a_503_and_is_not_waited_for_again_at_once(client, api_token, settings,
                                                                                 model_server):
    engine = Engine(metadata_of(model_server, "retina"), lambda: (200, b"{}"), delay=10)
    try:
        settings.MODEL_ARTIFACTS_DIR, settings.MODEL_RETRY_SECONDS = SHIPPED, 30
        settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = engine.url, ["retina"], 0.5
        started = time.monotonic()
        first = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
        waited = time.monotonic() - started
        assert "did not answer within 0.5 s" in assert_error(first, 503, "model_unavailable")["message"]
        assert waited < 3
        started = time.monotonic()
        second = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
        assert_error(second, 503, "model_unavailable")
        assert time.monotonic() - started < waited and engine.inferences == 1  # refused without asking
    finally:
        engine.close()


@pytest.mark.parametrize("status, body, says", [
    (200, b"<html>gateway</html>", "something other than JSON"),
    (200, b'{"outputs": [{"name": "logits", "shape": [1, 5], "datatype": "FP32", "data": [1, 2]}]}', "malformed"),
    (200, b'{"outputs": [{"name": "logits", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}',
     "malformed"),
    (200, b'[1, 2, 3]', "not an object"),
    (500, b'{"error": "CUDA out of memory"}', "answered 500"),
    (200, json.dumps({"model_name": "retina", "model_version": "f" * 64, "outputs": [
        {"name": "logits", "shape": [1, 5], "datatype": "FP32", "data": [0.0] * 5},
        {"name": "cam", "shape": [1, 9, 9], "datatype": "FP32", "data": [0.0] * 81},
        {"name": "domain_distance", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode(),
     "now serves retina version ffffffffffff"),
])
def test_a_malformed_failed_or_other_version_answer_is_a_503(client, api_token, settings, model_server, status, body, says):
    engine = Engine(metadata_of(model_server, "retina"), lambda: (status, body))
    try:
        settings.MODEL_ARTIFACTS_DIR = SHIPPED
        settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = engine.url, ["retina"], 5
        response = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
        assert says in assert_error(response, 503, "model_unavailable")["message"]
    finally:
        engine.close()


def test_a_server_with_another_version_of_the_model_is_refused_with_the_reason(client, api_token, settings,
                                                                               artifacts, model_server):
    """The site was retrained (the quick artifacts), the server still has the shipped graph."""
    settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = model_server.url, ["retina"], TIMEOUT
    shipped = json.loads((SHIPPED / "retina" / "manifest.json").read_text())["files"]["model.onnx"]
    response = post_image(client, "retina", fundus_upload(), api_token, name="fundus.jpg")
    message = assert_error(response, 503, "model_unavailable")["message"]
    assert f"serves retina version(s) {shipped[:12]}" in message and "not this site's" in message


def test_ready_and_status_report_the_model_server(client, db, settings, model_server):
    settings.MODEL_ARTIFACTS_DIR, settings.METRICS_TOKEN = SHIPPED, "operator-token"
    settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = model_server.url, list(IMAGE), TIMEOUT
    ready = client.get("/ready/")
    assert ready.status_code == 200 and ready.json()["checks"]["model_server:ecg"] == "ok"
    status = client.get("/status/", HTTP_AUTHORIZATION="Bearer operator-token").json()
    served_by = {m["name"]: m["served_by"] for m in status["models"]}
    assert served_by == {"diabetes": "this process", "heart": "this process", "retina": model_server.url,
                         "ecg": model_server.url}
    settings.INFERENCE_URL = down_url()
    started = time.monotonic()
    ready = client.get("/ready/")
    assert time.monotonic() - started < 1
    assert ready.status_code == 503 and ready.json()["checks"]["model_server:retina"] == "unavailable"


def test_ready_stays_under_a_second_while_the_server_stalls(client, db, settings, model_server):
    engine = Engine(metadata_of(model_server, "retina"), lambda: (200, b"{}"), stalled=True)
    try:
        settings.MODEL_ARTIFACTS_DIR = SHIPPED
        settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT = engine.url, list(IMAGE), 30
        started = time.monotonic()
        ready = client.get("/ready/")
        assert time.monotonic() - started < 1
        assert ready.status_code == 503 and ready.json()["checks"]["model_server:ecg"] == "unavailable"
    finally:
        engine.close()


# --- what the deployer hands the engine -----------------------------------------------------------------

def test_the_repository_names_each_model_file_by_its_hash(tmp_path, settings):
    from django.core.management import call_command

    settings.MODEL_ARTIFACTS_DIR = SHIPPED
    call_command("write_inference_repository", str(tmp_path))
    for model in IMAGE:
        sha256 = json.loads((SHIPPED / model / "manifest.json").read_text())["files"]["model.onnx"]
        assert f'parameters {{ key: "sha256" value {{ string_value: "{sha256}" }} }}' in \
            (tmp_path / "triton" / model / "config.pbtxt").read_text()
        assert (tmp_path / "triton" / model / "1" / "model.onnx").read_bytes() == (SHIPPED / model / "model.onnx").read_bytes()
        mlserver = json.loads((tmp_path / "mlserver" / model / "model-settings.json").read_text())
        assert mlserver["versions"] == [sha256] and mlserver["implementation"] == "healthoracle_onnx.OnnxImageModel"
    assert (tmp_path / "mlserver" / "healthoracle_onnx.py").is_file()
    service = yaml.safe_load((tmp_path / "kserve" / "inferenceservice.yaml").read_text())
    assert service["kind"] == "InferenceService" and service["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
