"""predictors.training.export: the ONNX graph answers as the network does, says where it looked, and is int8 only where int8 gives the same answers."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.training import export, vision


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


def _judged_by(probabilities_of):
    """A judge that reads no graph: fp32's probabilities, or the int8 candidate's."""
    def judge(path):
        probs = probabilities_of("int8" if path.name == "int8.onnx" else "fp32")
        return probs, {}, 0.9
    return judge


@pytest.fixture()
def no_real_quantization(monkeypatch):
    monkeypatch.setattr(export, "quantize_int8", lambda src, dst, *args, **kwargs: dst.write_bytes(b"int8"))
    monkeypatch.setattr(export, "_exclusion_candidates", lambda *args: iter([[]]))


def test_a_graded_models_int8_graph_is_judged_on_its_referral_call_not_its_grade(tmp_path, no_real_quantization):
    fp32 = tmp_path / "model.fp32.onnx"
    fp32.write_bytes(b"fp32")
    # Ten photos; int8 moves two from grade 3 to grade 4: the same referral call, another top grade.
    before = np.tile([0.05, 0.05, 0.1, 0.6, 0.2], (10, 1))
    after = before.copy()
    after[:2] = [0.05, 0.05, 0.1, 0.2, 0.6]
    referral = vision._answer(vision.recipe("retina", quick=True))  # what training passes for the retina
    result = export.quantize_with_fallback(fp32, tmp_path / "served.onnx", np.zeros((1, 3, 8, 8), np.float32),
                                           _judged_by({"fp32": before, "int8": after}.get), **referral)
    assert result["served"] == "int8" and (tmp_path / "served.onnx").read_bytes() == b"int8"
    assert "referral side (P(referable) at least 50%) agreement with fp32 100.0%" in result["decision"]
    # Judged on the top grade instead, the same int8 graph falls short of the bar.
    result = export.quantize_with_fallback(fp32, tmp_path / "served.onnx", np.zeros((1, 3, 8, 8), np.float32),
                                           _judged_by({"fp32": before, "int8": after}.get))
    assert result["served"] == "fp32"
    # One photo of ten moved across the referral line is too many.
    crossed = before.copy()
    crossed[0] = [0.6, 0.1, 0.1, 0.1, 0.1]
    result = export.quantize_with_fallback(fp32, tmp_path / "served.onnx", np.zeros((1, 3, 8, 8), np.float32),
                                           _judged_by({"fp32": before, "int8": crossed}.get), **referral)
    assert result["served"] == "fp32" and (tmp_path / "served.onnx").read_bytes() == b"fp32"
