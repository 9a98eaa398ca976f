"""predictors.training.import_weights through `import_model`: bring your own weights, checked before
they are exported, quantized and served."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from predictors.catalogue import SPECS
from predictors.images.transform import model_input
from predictors.training import synth_fundus

from ..support import make_loader


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
    model = make_loader(out_root, budget_mb=2000).get("retina")
    assert model.labels == list(SPECS["retina"].labels) and model.artifact.input_spec["height"] == 96
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
    assert make_loader(out_root, budget_mb=2000).get("diabetes").predict(np.full(8, np.nan)).probability > 0
    bad = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rng.random((50, 5)), label=rng.integers(0, 2, 50)), 3)
    bad.save_model(tmp_path / "bad.json")
    with pytest.raises(CommandError, match="takes 5 features; heart needs 13"):
        call_command("import_model", "heart", "--xgboost", str(tmp_path / "bad.json"), "--output", str(out_root))


def test_import_needs_the_right_file_flag(out_root):
    with pytest.raises(CommandError, match="needs --state-dict"):
        call_command("import_model", "ecg", "--output", str(out_root))
