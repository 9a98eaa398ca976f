"""predictors.serving.artifacts: a model directory is served only as its manifest signed it."""
from __future__ import annotations

import pytest

from predictors.inputs import TABULAR_SCHEMAS
from predictors.serving.registry import ModelUnavailable

from ..support import make_loader


def test_tampered_weights_fail_the_manifest_check(artifacts):
    loader = make_loader(artifacts)
    model_file = artifacts / "ecg" / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="does not match its manifest checksum"):
        loader.get("ecg")
    # The other models still answer.
    heart = TABULAR_SCHEMAS["heart"]
    answer = loader.get("heart").predict(heart.encode({"age": 60, "sex": "male", "chest_pain_type": "asymptomatic"}))
    assert 0 < answer.probability < 1 and set(answer.contributions) == set(heart.feature_names)
