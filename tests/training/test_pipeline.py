"""predictors.training.pipeline through `train_models --quick`: train, export, quantize, serve."""
from __future__ import annotations

import json

import numpy as np

from predictors.catalogue import MODEL_SPECS
from predictors.images.transform import model_input
from predictors.inputs import TABULAR_SCHEMAS
from predictors.serving.artifacts import open_artifact
from predictors.training import real_images

from ..support import make_loader


def test_quick_training_writes_complete_verified_artifacts(quick_artifacts):
    for spec in MODEL_SPECS:
        artifact = open_artifact(spec.name, quick_artifacts / spec.name)
        card = artifact.card
        assert card["kind"] == spec.kind and card["training"]["quick"] is True
        assert card["intended_use"] and card["metrics"] and card["library_versions"]["python"].startswith("3.11")
        for plot in card["plots"].values():
            assert (quick_artifacts / spec.name / plot).read_bytes()[:4] == b"\x89PNG"
    for name in ("retina", "ecg"):
        card = json.loads((quick_artifacts / name / "card.json").read_text())
        assert card["data"]["synthetic"] is False and "../shared/data" in card["data"]["source"]
        assert "CC BY 4.0" in card["attribution"] and card["limitations"]
        # Quick builds always serve the int8 graph, so tests exercise the int8 serving path.
        assert card["quantization"]["served"] == "int8" and card["quantization"]["fp32_nodes"] == []
        assert card["export"]["exporter"].startswith("torch.onnx.export(dynamo=True)")
        assert card["export"]["max_abs_logit_difference_vs_pytorch"] < 1e-3
    retina = json.loads((quick_artifacts / "retina" / "card.json").read_text())
    low, high = retina["metrics"]["test"]["referable_dr_auc"]["ci95"]
    assert low <= retina["metrics"]["test"]["referable_dr_auc"]["value"] <= high
    ecg = json.loads((quick_artifacts / "ecg" / "card.json").read_text())
    assert set(ecg["metrics"]["test"]["recall"]) == set(ecg["labels"])
    # The ECG's domain score also learns to refuse other machines' printouts (issue 29): 4 fitting-fold
    # recordings in 4 looks each, in a quick build; the retina has no other cameras' photos to learn from.
    assert ecg["domain"]["threshold"] == 1.0 and ecg["domain"]["machine"]["printouts"] == 16
    assert "machine" not in retina["domain"]
    heart = json.loads((quick_artifacts / "heart" / "card.json").read_text())
    assert set(heart["metrics"]["external_validation"]) == {"Hungary", "Switzerland", "VA Long Beach"}


def test_quick_artifacts_serve_real_photos_through_the_registry(quick_artifacts):
    loader = make_loader(quick_artifacts, budget_mb=2000)
    for name, items in (("retina", real_images.fundus_images()), ("ecg", real_images.ecg_images())):
        model = loader.get(name)
        outputs = [model.predict(model_input(real_images.load_rgb(item.path), model.artifact.input_spec)).probabilities
                   for item in (items[0], items[-1])]
        for probabilities in outputs:
            assert probabilities.shape == (len(model.labels),) and abs(probabilities.sum() - 1) < 1e-4
        # A graph that ignored its input (a constant) would answer two different photos the same.
        assert np.abs(outputs[0] - outputs[1]).max() > 1e-4
    output = loader.get("heart").predict(TABULAR_SCHEMAS["heart"].encode({"age": 60, "sex": "male",
                                                                         "chest_pain_type": "asymptomatic"}))
    assert 0 < output.probability < 1 and set(output.contributions) == set(TABULAR_SCHEMAS["heart"].feature_names)
