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
