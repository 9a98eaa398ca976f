"""The ModelLoader registry: lazy, single-load, budgeted, isolated failures, status."""
from __future__ import annotations

import gc
import json
import subprocess
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

from predictors.catalogue import MODEL_SPECS
from predictors.serving.registry import ModelLoader, ModelUnavailable, get_loader
from predictors.serving.runtimes import RuntimeOptions

from .conftest import ROOT

MB = 1024 * 1024


def make_loader(directory: Path, budget_mb: int = 1000, retry: float = 0.0) -> ModelLoader:
    return ModelLoader(MODEL_SPECS, directory, budget_mb * MB, retry, RuntimeOptions())


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


def test_tampered_weights_fail_the_manifest_check(artifacts):
    loader = make_loader(artifacts)
    model_file = artifacts / "ecg" / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="does not match its manifest checksum"):
        loader.get("ecg")
    assert loader.get("heart") is not None


def test_corrupt_onnx_with_a_matching_manifest_is_refused_by_the_runtime(artifacts):
    from predictors.serving.artifacts import MANIFEST, write_manifest

    (artifacts / "retina" / "model.onnx").write_bytes(b"this is not a protobuf" * 100)
    files = list(json.loads((artifacts / "retina" / MANIFEST).read_text())["files"])
    write_manifest(artifacts / "retina", files)
    loader = make_loader(artifacts)
    with pytest.raises(ModelUnavailable, match="ONNX Runtime cannot load"):
        loader.get("retina")
    assert loader.get("ecg") is not None


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


def test_registry_follows_settings(artifacts, settings):
    assert get_loader().artifacts_dir == artifacts
    settings.MODEL_MEMORY_BUDGET_MB = 123
    assert get_loader().budget_bytes == 123 * MB


@pytest.mark.django_db
def test_warm_models_command_loads_and_reports(artifacts):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("warm_models", "all", stdout=out)
    states = dict(line.split()[:2] for line in out.getvalue().splitlines())
    assert states == {"diabetes": "loaded", "heart": "loaded", "retina": "loaded", "ecg": "loaded"}
    assert all(m["state"] == "loaded" for m in get_loader().status()["models"])


def test_background_warmup_never_blocks(artifacts, settings, monkeypatch):
    """The caller (a worker starting) gets control back while the models are still loading."""
    from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular
    from predictors.serving.warmup import start_background_warmup

    release = threading.Event()
    real_load = XGBoostTabular.load.__func__

    def held_load(cls, artifact, options):
        assert release.wait(60), "the test never released the load"
        return real_load(cls, artifact, options)

    monkeypatch.setattr(XGBoostTabular, "load", classmethod(held_load))
    settings.WARM_MODELS = ["diabetes", "retina", "nonsense"]
    thread = start_background_warmup()  # would hang here if the warm-up ran on the caller's thread
    assert thread is not None and thread.daemon and thread.is_alive()
    assert all(m["state"] == "not_loaded" for m in get_loader().status()["models"])
    release.set()
    thread.join(timeout=120)
    states = {m["name"]: m["state"] for m in get_loader().status()["models"]}
    assert states["retina"] == "loaded" and states["diabetes"] == "loaded" and states["ecg"] == "not_loaded"


def test_artifact_changed_while_loaded_is_noticed_on_the_next_request(artifacts, tmp_path):
    loader = make_loader(artifacts)
    assert loader.get("retina") is not None
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


def _model_name_lists(path: Path) -> list[int]:
    """Lines of `path` that write two or more model names as one literal list, tuple or set.

    Dicts keyed by model name hold a fact per model (its form, its data source), not the list."""
    import ast

    from predictors.catalogue import NAMES

    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = [i.value for i in node.elts if isinstance(i, ast.Constant) and i.value in NAMES]
            if len(names) >= 2:
                lines.append(node.lineno)
    return lines


def test_the_four_models_are_listed_in_one_place():
    """Issue 16: registry, models, api, train_models, import_model, pipeline and the base template
    each wrote the list; now predictors.catalogue does, and everything reads it."""
    from predictors.catalogue import NAMES

    code = [p for p in (ROOT / "predictors").rglob("*.py")
            if "migrations" not in p.parts and p.name != "catalogue.py"]
    offenders = {str(p.relative_to(ROOT)): lines for p in code if (lines := _model_name_lists(p))}
    assert offenders == {}
    templates = {p.name: p.read_text() for p in (ROOT / "templates").rglob("*.html")}
    assert [name for name, text in templates.items()
            if sum(f"'{model}'" in text or f'"{model}"' in text for model in NAMES) >= 2] == []


@pytest.mark.django_db
def test_every_catalogued_model_has_its_pages_and_endpoint(admin_client, artifacts):
    from predictors.catalogue import MODEL_SPECS
    from predictors.openapi import build_document

    nav = admin_client.get("/").content.decode()
    paths = build_document()["paths"]
    history = admin_client.get("/history/").content.decode()
    for spec in MODEL_SPECS:
        assert f'href="/predict/{spec.name}/">{spec.nav}</a>' in nav
        assert f'<option value="{spec.name}">{spec.title}</option>' in history
        assert admin_client.get(f"/models/{spec.name}/").status_code == 200
        assert f"/api/v1/predict/{spec.name}" in paths
