"""Data loaders, generators, the quick train -> export -> quantize -> serve path, imports."""
from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import onnx
import pytest
from django.core.management import CommandError, call_command

from predictors.serving.artifacts import open_artifact
from predictors.images.transform import model_input
from predictors.images.gate import scene_scores
from predictors.inputs import TABULAR_SCHEMAS
from predictors.catalogue import MODEL_SPECS
from predictors.serving.registry import ModelLoader
from predictors.serving.runtimes import RuntimeOptions
from predictors.training import real_images, synth_ecg, synth_fundus, vision
from predictors.training.tabular_data import load_heart, load_pima

from .conftest import ROOT

SHIPPED = ROOT / "predictors" / "artifacts"


def serve(directory: Path) -> ModelLoader:
    return ModelLoader(MODEL_SPECS, directory, 2000 * 1024 * 1024, 0.0, RuntimeOptions())


# --- data -------------------------------------------------------------------------------

def test_pima_rows_labels_and_zeros_as_missing():
    X, y = load_pima()
    assert X.shape == (768, 8) and int(y.sum()) == 268
    assert list(X.columns) == TABULAR_SCHEMAS["diabetes"].feature_names
    assert X.isna().sum().to_dict() == {"pregnancies": 0, "glucose": 5, "blood_pressure": 35, "skin_thickness": 227,
                                        "insulin": 374, "bmi": 11, "diabetes_pedigree": 0, "age": 0}
    assert (X["pregnancies"] == 0).sum() > 100  # a zero pregnancy count is a real zero


def test_heart_rows_sites_and_category_mapping():
    X, y, sites = load_heart()
    assert X.shape == (920, 13)
    assert {s: int((sites == s).sum()) for s in set(sites)} == {
        "Cleveland": 304, "Hungary": 293, "Switzerland": 123, "VA Long Beach": 200}
    schema = TABULAR_SCHEMAS["heart"]
    assert list(X.columns) == schema.feature_names
    assert set(X["chest_pain_type"].dropna()) == {1.0, 2.0, 3.0, 4.0}
    assert set(X["thal"].dropna()) == {3.0, 6.0, 7.0}
    assert set(X["sex"]) == {0.0, 1.0}
    first = X.iloc[0]  # Cleveland row 1: 63, male, typical angina, ..., fixed defect
    assert (first["age"], first["sex"], first["chest_pain_type"], first["thal"]) == (63, 1, 1, 6)
    assert X.loc[sites == "Switzerland", "cholesterol"].isna().all()  # recorded as 0 there
    assert 0.4 < y[sites == "Cleveland"].mean() < 0.5


# --- generators ---------------------------------------------------------------------------

def test_fundus_generator_is_deterministic_and_gated_as_fundus():
    a, b = synth_fundus.generate(3, 11), synth_fundus.generate(3, 11)
    assert a.size == (synth_fundus.SIZE, synth_fundus.SIZE) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(synth_fundus.generate(3, 12)))
    assert all(scene_scores(synth_fundus.generate(g, 5)).kind == "fundus" for g in range(5))


def lesion_pixels(image) -> float:
    """Dark-red (haemorrhage) and yellow-white (exudate, cotton-wool) pixels."""
    rgb = np.asarray(image, dtype=np.int32)
    red = (rgb[..., 0] > 90) & (rgb[..., 0] < 150) & (rgb[..., 1] < 40) & (rgb[..., 2] < 45)
    pale = (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] > 80)
    return float((red | pale).mean())


def test_fundus_grades_differ_in_lesion_load():
    load = {g: np.mean([lesion_pixels(synth_fundus.generate(g, s)) for s in range(6)]) for g in range(5)}
    assert load[0] < load[2] < load[3]
    assert load[4] > load[1]


def test_ecg_generator_is_deterministic_and_gated_as_ecg():
    record = synth_ecg.simulate(0, 3)
    assert record.signals.shape[0] == 12 and record.signals.shape[1] >= 10 * synth_ecg.RATE
    again = synth_ecg.simulate(0, 3)
    assert np.array_equal(record.signals, again.signals)
    a, b = synth_ecg.render(record, 1), synth_ecg.render(record, 1)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert scene_scores(a).kind == "ecg"


def rr_irregularity(record) -> float:
    peaks = synth_ecg._r_peaks(record.signals)
    rr = np.diff(peaks) / synth_ecg.RATE
    return float(np.std(np.diff(rr)))


def test_ecg_classes_differ_as_their_ecgs_do():
    normal = [synth_ecg.simulate(0, s) for s in range(3)]
    af = [synth_ecg.simulate(1, s) for s in range(3)]
    mi = [synth_ecg.simulate(2, s) for s in range(3)]
    # Atrial fibrillation: beat-to-beat RR changes far larger than sinus rhythm's.
    assert min(rr_irregularity(r) for r in af) > 2 * max(rr_irregularity(r) for r in normal)
    # Acute MI: the ST segment sits above baseline in the territory's leads.
    def st_level(record, leads):
        peaks = synth_ecg._r_peaks(record.signals)
        rows = [synth_ecg.LEADS.index(lead) for lead in leads]
        offset = int(0.12 * synth_ecg.RATE)
        return float(np.mean([record.signals[rows, p + offset] for p in peaks if p + offset < record.signals.shape[1]]))
    for record in mi:
        leads, _ = synth_ecg.TERRITORIES[record.territory]
        assert st_level(record, leads) > st_level(normal[0], leads) + 0.1


# --- quick pipeline end to end -------------------------------------------------------------

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
    heart = json.loads((quick_artifacts / "heart" / "card.json").read_text())
    assert set(heart["metrics"]["external_validation"]) == {"Hungary", "Switzerland", "VA Long Beach"}


def test_quick_artifacts_serve_real_photos_through_the_registry(quick_artifacts):
    loader = serve(quick_artifacts)
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


# --- the shipped demo models ---------------------------------------------------------------

def test_shipped_demo_artifacts_verify_and_behave_sensibly():
    loader = serve(SHIPPED)
    assert all(problem is None for problem in loader.check_artifacts().values()), loader.check_artifacts()
    diabetes = TABULAR_SCHEMAS["diabetes"]
    low = {"pregnancies": 0, "glucose": 85, "blood_pressure": 66, "skin_thickness": 20, "insulin": 60, "bmi": 22.0,
           "diabetes_pedigree": 0.2, "age": 24}
    high = {**low, "glucose": 190, "bmi": 42.0, "age": 55, "diabetes_pedigree": 1.2}
    model = loader.get("diabetes")
    assert model.predict(diabetes.encode(high)).probability > model.predict(diabetes.encode(low)).probability + 0.3
    for name in ("retina", "ecg"):
        card = loader.card(name)
        assert card["training"]["quick"] is False and card["data"]["synthetic"] is False
        assert card["input"] == vision.recipe(name, quick=False).input_spec
        # The card's word for the served graph is the graph's: int8 has quantization nodes, fp32 none.
        ops = {node.op_type for node in onnx.load(str(SHIPPED / name / card["model_file"])).graph.node}
        quantized = any(op in ("QuantizeLinear", "DequantizeLinear") or op.startswith("QLinear")
                        or op.endswith("Integer") for op in ops)
        assert quantized == card["quantization"]["served"].startswith("int8"), (card["quantization"]["served"], ops)
        assert "CC BY 4.0" in card["attribution"] and card["limitations"]


def _served_test_metrics(name: str) -> tuple[dict, dict]:
    """The shipped model's figures recomputed on its real test images (the files its card lists), and the card's own.

    Training holds its inputs in float16 and the site computes them in float32, so a
    near-tie may land one grade over: figures agree to a point, confusion matrices to
    one moved image.
    """
    loader = serve(SHIPPED)
    model, card = loader.get(name), loader.card(name)
    recipe = vision.recipe(name, quick=False)
    items = real_images.fundus_images() if name == "retina" else real_images.ecg_images()
    root = real_images.data_root()
    by_file = {str(item.path.relative_to(root)): item for item in items}
    test = [by_file[file] for file in card["data"]["test_files"]]
    y = np.array([item.label for item in test])
    probabilities = np.stack([model.predict(model_input(real_images.load_rgb(item.path), card["input"])).probabilities
                              for item in test])
    return vision.metrics_for(recipe, y, probabilities), card["metrics"]["test"]


def _moved_images(measured: dict, card: dict) -> int:
    return int(np.abs(np.array(measured["confusion_matrix"]) - np.array(card["confusion_matrix"])).sum()) // 2


def test_shipped_retina_card_figures_are_true_of_the_served_graph():
    measured, card = _served_test_metrics("retina")
    assert measured["images"] == card["images"] == 57  # IDRiD's official test split, every photo
    for key in ("referable_dr_auc", "quadratic_weighted_kappa", "accuracy"):
        assert abs(measured[key]["value"] - card[key]["value"]) < 0.03, key
    assert measured["referable_dr_auc"]["value"] > 0.75, "referable DR must be ranked far better than chance"
    assert _moved_images(measured, card) <= 1


def test_shipped_ecg_card_figures_are_true_of_the_served_graph():
    measured, card = _served_test_metrics("ecg")
    assert measured["images"] == card["images"]
    assert abs(measured["macro_f1"]["value"] - card["macro_f1"]["value"]) < 0.03
    assert _moved_images(measured, card) <= 1
    assert measured["accuracy"]["value"] > 0.6, "four classes: chance is about a third on this split"


# --- bring your own weights ----------------------------------------------------------------

@pytest.fixture
def out_root(tmp_path) -> Path:
    return tmp_path / "imported"


def test_import_torchvision_state_dict_is_exported_quantized_and_served(tmp_path, out_root):
    import torch

    from predictors.training.vision import build_network

    weights = tmp_path / "aptos_effnet.pt"
    torch.save(build_network("efficientnet_lite0", 5).state_dict(), weights)
    out = StringIO()
    call_command("import_model", "retina", "--state-dict", str(weights), "--input-size", "96",
                 "--output", str(out_root), stdout=out)
    assert "imported retina" in out.getvalue()
    model = serve(out_root).get("retina")
    assert model.labels == synth_fundus.GRADES and model.artifact.input_spec["height"] == 96
    assert model.predict(model_input(synth_fundus.generate(0, 1), model.artifact.input_spec)).probabilities.shape == (5,)


def test_import_refuses_weights_of_the_wrong_network(tmp_path, out_root):
    import torch

    from predictors.training.vision import build_network

    weights = tmp_path / "resnet.pt"
    torch.save(build_network("resnet50", 4).state_dict(), weights)
    with pytest.raises(CommandError, match="do not fit efficientnet_lite0"):
        call_command("import_model", "retina", "--state-dict", str(weights), "--output", str(out_root))
    assert not (out_root / "retina").exists()


def test_import_refuses_a_file_that_is_not_a_state_dict(tmp_path, out_root):
    junk = tmp_path / "weights.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CommandError, match="not a PyTorch state_dict"):
        call_command("import_model", "ecg", "--state-dict", str(junk), "--output", str(out_root))


def test_import_xgboost_checks_the_feature_list(tmp_path, out_root):
    import xgboost as xgb

    rng = np.random.default_rng(0)
    good = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rng.random((50, 8)), label=rng.integers(0, 2, 50)), 3)
    good.save_model(tmp_path / "good.json")
    call_command("import_model", "diabetes", "--xgboost", str(tmp_path / "good.json"), "--output", str(out_root),
                 stdout=StringIO())
    assert serve(out_root).get("diabetes").predict(np.full(8, np.nan)).probability > 0
    bad = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rng.random((50, 5)), label=rng.integers(0, 2, 50)), 3)
    bad.save_model(tmp_path / "bad.json")
    with pytest.raises(CommandError, match="takes 5 features; heart needs 13"):
        call_command("import_model", "heart", "--xgboost", str(tmp_path / "bad.json"), "--output", str(out_root))


def test_import_needs_the_right_file_flag(out_root):
    with pytest.raises(CommandError, match="needs --state-dict"):
        call_command("import_model", "ecg", "--output", str(out_root))


# --- where the model looked ----------------------------------------------------------------

@pytest.mark.parametrize("architecture,classes,size", [("resnet50", 4, (64, 96)), ("efficientnet_lite0", 5, (96, 96))])
def test_the_graphs_activation_map_is_the_one_pytorch_computes_from_the_same_weights(tmp_path, architecture, classes,
                                                                                      size):
    """The exported graph's second output is the top class's class activation map, exactly."""
    import onnxruntime as ort
    import torch

    from predictors.training.export import export_onnx, with_activation_map

    torch.manual_seed(0)
    network = vision.build_network(architecture, classes).eval()
    for parameter in network.parameters():  # a trained-looking head, so classes differ
        parameter.data += 0.01 * torch.randn_like(parameter)
    x = torch.randn(2, 3, *size)
    export_onnx(with_activation_map(network, architecture), tmp_path / "model.onnx",
                {"height": size[0], "width": size[1]}, x.numpy())
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, cam = session.run(["logits", "cam"], {"input": x.numpy()})
    with torch.no_grad():
        expected_logits = network(x)
        if architecture == "resnet50":
            maps = torch.nn.Sequential(*list(network.children())[:-2])(x)
            weight = network.fc.weight
        else:
            maps = network.extract_features(x)
            weight = network._fc.weight
        top = expected_logits.argmax(dim=1)
        expected_cam = (weight[top][:, :, None, None] * maps).sum(dim=1)
        bias = (network.fc if architecture == "resnet50" else network._fc).bias[top].numpy()
    np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-3)
    np.testing.assert_allclose(cam, expected_cam.numpy(), atol=1e-3 * max(1.0, float(expected_cam.abs().max())))
    # The map's mean is the top logit less its bias: the whole answer, spread over the picture.
    assert cam.mean(axis=(1, 2)) == pytest.approx(logits.max(axis=1) - bias, abs=1e-3)
