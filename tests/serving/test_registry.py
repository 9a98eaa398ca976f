"""predictors.serving.registry, the ModelLoader: lazy, single-load, budgeted, failures isolated
per model, status."""
from __future__ import annotations

import gc
import json
import shutil
import subprocess
import threading
import weakref

import numpy as np
import pytest

from bench.harness import payloads
from predictors.catalogue import MODEL_SPECS
from predictors.serving.artifacts import open_artifact
from predictors.serving.registry import ModelLoader, ModelUnavailable, get_loader
from predictors.serving.runtimes import RuntimeOptions

from ..support import ROOT, image_probabilities, make_loader, rewrite_card, sample


MB = 1024 * 1024


def test_nothing_loads_at_start_up_or_on_health(runtime_python, quick_artifacts):
    code = (
        "import os, sys, json, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'HealthOracle.settings'\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "from django.core.handlers.wsgi import WSGIHandler\n"
        "Client().get('/health/'); Client().get('/ready/')\n"
        "from predictors.serving.registry import get_loader\n"
        "print(json.dumps({m['name']: m['state'] for m in get_loader().status()['models']}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "ALLOWED_HOSTS": "testserver",
           "MODEL_ARTIFACTS_DIR": str(quick_artifacts), "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run([runtime_python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    states = json.loads(result.stdout.strip().splitlines()[-1])
    assert states == {"diabetes": "not_loaded", "heart": "not_loaded", "retina": "not_loaded", "ecg": "not_loaded"}


def test_concurrent_first_requests_load_a_model_exactly_once(artifacts):
    loader = make_loader(artifacts)
    barrier = threading.Barrier(8)
    got, errors = [], []

    def first_request():
        barrier.wait()
        try:
            got.append(loader.get("ecg"))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len({id(m) for m in got}) == 1
    status = {m["name"]: m for m in loader.status()["models"]}
    assert status["ecg"]["loads"] == 1 and status["ecg"]["state"] == "loaded"


def test_cached_model_is_reused_and_status_reports_it(artifacts):
    loader = make_loader(artifacts)
    first = loader.get("diabetes")
    assert loader.get("diabetes") is first
    entry = next(m for m in loader.status()["models"] if m["name"] == "diabetes")
    assert entry["state"] == "loaded" and entry["loads"] == 1
    assert entry["version"] == json.loads((artifacts / "diabetes" / "card.json").read_text())["version"]
    assert entry["load_seconds"] > 0 and entry["cost_mb"] > 0


def test_small_budget_evicts_least_recently_used_and_frees_memory(artifacts):
    """Freed means nothing references the evicted runtime any more, so its ONNX Runtime session
    and weights are released; the memory each model takes is measured by bench/serve_bench.py."""
    sizes = {name: (artifacts / name / "model.onnx").stat().st_size for name in ("retina", "ecg")}
    # Room for the larger image model and half the smaller: one fits, both never do, since a
    # model's counted cost is at least its file size.
    budget = max(sizes.values()) + min(sizes.values()) // 2
    squeezed = ModelLoader(MODEL_SPECS, artifacts, budget, 0.0, RuntimeOptions())
    first_ecg = weakref.ref(squeezed.get("ecg").runtime)
    squeezed.get("retina")
    states = {m["name"]: m for m in squeezed.status()["models"]}
    assert states["ecg"]["state"] == "not_loaded" and states["ecg"]["unloads"] == 1
    assert states["retina"]["state"] == "loaded"
    gc.collect()
    assert first_ecg() is None, "the evicted ECG model is still referenced"
    retina = weakref.ref(squeezed.get("retina").runtime)
    second_ecg = weakref.ref(squeezed.get("ecg").runtime)
    states = {m["name"]: m for m in squeezed.status()["models"]}
    assert states["retina"]["state"] == "not_loaded" and states["ecg"]["state"] == "loaded"
    squeezed.unload_all()
    gc.collect()
    assert retina() is None and second_ecg() is None
    assert all(m["state"] == "not_loaded" for m in squeezed.status()["models"])


def test_missing_artifact_fails_only_its_model_and_recovers_when_restored(artifacts, tmp_path):
    loader = make_loader(artifacts)
    hidden = tmp_path / "retina-away"
    (artifacts / "retina").rename(hidden)
    with pytest.raises(ModelUnavailable, match="no artifact directory"):
        loader.get("retina")
    assert loader.get("diabetes").predict(np.full(8, np.nan)).probability > 0
    status = {m["name"]: m for m in loader.status()["models"]}
    assert status["retina"]["state"] == "unavailable" and "no artifact directory" in status["retina"]["error"]
    hidden.rename(artifacts / "retina")
    assert loader.get("retina").labels[0] == "No DR"
    assert next(m for m in loader.status()["models"] if m["name"] == "retina")["state"] == "loaded"


def test_failed_model_waits_before_retrying(artifacts):
    loader = make_loader(artifacts, retry=3600)
    (artifacts / "heart" / "model.ubj").unlink()
    with pytest.raises(ModelUnavailable):
        loader.get("heart")
    status = next(m for m in loader.status()["models"] if m["name"] == "heart")
    assert status["retry_in_seconds"] > 3000
    with pytest.raises(ModelUnavailable, match="missing"):
        loader.get("heart")
    assert next(m for m in loader.status()["models"] if m["name"] == "heart")["loads"] == 0


def test_check_artifacts_verifies_without_loading(artifacts):
    loader = make_loader(artifacts)
    (artifacts / "diabetes" / "card.json").write_text("{}")
    problems = loader.check_artifacts()
    assert problems["heart"] is None and problems["retina"] is None
    assert "does not match its manifest" in problems["diabetes"]
    assert all(m["state"] == "not_loaded" for m in loader.status()["models"])


def test_a_card_is_verified_once_and_again_only_when_its_artifact_changes(artifacts, monkeypatch):
    """The history quotes the card of every result it lists, its model loaded or not: a model not loaded
    has its artifact verified on the first read, and again only once a file of it changes on disk."""
    from predictors.serving import registry

    opened = []
    monkeypatch.setattr(registry, "open_artifact", lambda *a: opened.append(a[0]) or open_artifact(*a))
    loader = make_loader(artifacts)
    for _ in range(3):
        assert loader.card("retina")["labels"][0] == "No DR"
    assert opened == ["retina"]
    assert next(m for m in loader.status()["models"] if m["name"] == "retina")["state"] == "not_loaded"
    rewrite_card(artifacts, "retina", lambda card: card["labels"].__setitem__(0, "No retinopathy"))
    assert loader.card("retina")["labels"][0] == "No retinopathy" and opened == ["retina"] * 2
    plot = artifacts / "retina" / "plots" / "roc.png"
    plot.write_bytes(plot.read_bytes() + b"\0")
    with pytest.raises(ModelUnavailable, match="manifest checksum"):
        loader.card("retina")


def test_registry_follows_settings(artifacts, settings):
    assert get_loader().artifacts_dir == artifacts
    settings.MODEL_MEMORY_BUDGET_MB = 123
    assert get_loader().budget_bytes == 123 * MB


def test_artifact_changed_while_loaded_is_noticed_on_the_next_request(artifacts, tmp_path):
    loader = make_loader(artifacts)
    retina = loader.get("retina")
    probabilities = image_probabilities(retina, sample("fundus", "retina.jpg"))
    assert probabilities.shape == (len(retina.labels),) and probabilities.sum() == pytest.approx(1, abs=1e-4)
    away = tmp_path / "retina-away"
    (artifacts / "retina").rename(away)
    with pytest.raises(ModelUnavailable, match="no artifact directory"):
        loader.get("retina")
    away.rename(artifacts / "retina")
    assert loader.get("retina").name == "retina"
    model_file = artifacts / "retina" / "model.onnx"
    model_file.write_bytes(model_file.read_bytes()[:-10])
    with pytest.raises(ModelUnavailable, match="manifest checksum"):
        loader.get("retina")


@pytest.mark.slow
def test_artifact_deleted_or_corrupted_while_serving_fails_only_that_model(quick_site):
    inputs = payloads()
    assert quick_site.predict("retina", inputs["retina"])[0] == 200
    retina = quick_site.artifacts / "retina"
    shutil.move(retina, quick_site.workdir / "retina-away")
    status, body, _ = quick_site.predict("retina", inputs["retina"])
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert quick_site.predict("heart", inputs["heart"])[0] == 200
    shutil.move(quick_site.workdir / "retina-away", retina)
    assert quick_site.predict("retina", inputs["retina"])[0] == 200
    model_file = quick_site.artifacts / "ecg" / "model.onnx"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    status, body, _ = quick_site.predict("ecg", inputs["ecg"])
    assert status == 503 and "manifest checksum" in body["error"]["message"]
    assert quick_site.request("GET", "/ready/")[0] == 503
    assert quick_site.predict("diabetes", inputs["diabetes"])[0] == 200
