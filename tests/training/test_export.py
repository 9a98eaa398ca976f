"""predictors.training.export: the ONNX graph answers as the network does, and says where it looked."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.training import vision


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
