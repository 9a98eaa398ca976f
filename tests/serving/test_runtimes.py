"""predictors.serving.runtimes: ONNX Runtime sessions as the settings ask, and a graph it cannot load refused."""
from __future__ import annotations

import json

import pytest

from predictors.serving.registry import ModelUnavailable

from ..support import image_probabilities, make_loader, sample


def test_corrupt_onnx_with_a_matching_manifest_is_refused_by_the_runtime(artifacts):
    from predictors.serving.artifacts import MANIFEST, write_manifest

    (artifacts / "retina" / "model.onnx").write_bytes(b"this is not a protobuf" * 100)
    files = list(json.loads((artifacts / "retina" / MANIFEST).read_text())["files"])
    write_manifest(artifacts / "retina", files)
    loader = make_loader(artifacts)
    with pytest.raises(ModelUnavailable, match="ONNX Runtime cannot load"):
        loader.get("retina")
    # The other image model still answers.
    ecg = loader.get("ecg")
    probabilities = image_probabilities(ecg, sample("ecg", "ecg00001.png"))
    assert probabilities.shape == (len(ecg.labels),) and probabilities.sum() == pytest.approx(1, abs=1e-4)


def test_onnx_sessions_use_the_configured_threads_and_optimisation(artifacts, settings):
    """The session options are ONNX Runtime's own record of what the runtime asked for."""
    import onnxruntime as ort

    from predictors.serving.registry import get_loader

    settings.ORT_INTRA_OP_THREADS = 2
    settings.ORT_GRAPH_OPTIMIZATION = "basic"
    options = get_loader().get("retina").runtime._session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


@pytest.mark.parametrize("model", ["diabetes", "heart"])
def test_xgboost_runtime_answers_as_the_xgboost_package_does(artifacts, model):
    """The runtime calls libxgboost directly; its probability and TreeSHAP factors are the ones
    XGBoost's own Python package gives for the same rows, unknown values included."""
    import random

    import numpy as np
    import xgboost

    runtime = make_loader(artifacts).get(model).runtime
    features = runtime._features
    generator = random.Random(7)
    rows = [[None if generator.random() < 0.3 else generator.uniform(0, 250) for _ in features] for _ in range(50)]
    booster = xgboost.Booster()
    booster.load_model(str(artifacts / model / "model.ubj"))
    matrix = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)
    probabilities = booster.inplace_predict(matrix, missing=np.nan)
    contributions = booster.predict(xgboost.DMatrix(matrix, missing=np.nan, feature_names=features),
                                    pred_contribs=True)
    for row, probability, expected in zip(rows, probabilities, contributions, strict=True):
        output = runtime.predict(row)
        assert output.probability == pytest.approx(float(probability), abs=1e-7)
        assert [*output.contributions.values(), output.baseline] == pytest.approx(expected.tolist(), abs=1e-6)


def test_a_model_file_xgboost_cannot_read_is_refused_with_its_reason(artifacts):
    from predictors.serving.artifacts import MANIFEST, write_manifest

    (artifacts / "heart" / "model.ubj").write_bytes(b"{not a model")
    write_manifest(artifacts / "heart", list(json.loads((artifacts / "heart" / MANIFEST).read_text())["files"]))
    with pytest.raises(ModelUnavailable, match="XGBoost cannot read model.ubj"):
        make_loader(artifacts).get("heart")


def test_a_form_model_answers_without_numpy_scipy_or_the_xgboost_package(runtime_python):
    """What the first form after a spin-down waits for: in the web runtime, loading a form model and
    answering with it imports none of the libraries the xgboost package would (0.39 s of CPU)."""
    from ..support import run_python

    code = ("import sys, json\n"
            "from pathlib import Path\n"
            "from predictors.serving.artifacts import open_artifact\n"
            "from predictors.serving.runtimes import RuntimeOptions\n"
            "from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular\n"
            "model = XGBoostTabular.load(open_artifact('diabetes', Path('predictors/artifacts/diabetes')), RuntimeOptions())\n"
            "output = model.predict([2, 168, 72, None, None, 35.1, 0.52, 45])\n"
            "heavy = [m for m in ('numpy', 'scipy', 'xgboost') if m in sys.modules]\n"
            "print(json.dumps({'probability': output.probability, 'heavy': heavy}))\n")
    result = run_python(runtime_python, code, {"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < report["probability"] < 1 and report["heavy"] == []
