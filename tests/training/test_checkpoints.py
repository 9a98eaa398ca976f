"""Training that stops between epochs (a session's end, a killed job) resumes where it stopped."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from predictors.training import vision


class Stopped(Exception):
    """The job killed right after an epoch's checkpoint was written."""


@pytest.fixture()
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setattr(vision, "CHECKPOINT_DIR", tmp_path)
    r = dataclasses.replace(vision.recipe("retina", quick=True), input_spec=vision.retina_spec(32), epochs=2,
                            batch_size=4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3, 32, 32)).astype(np.float16)
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 2])
    recaptured = rng.normal(size=(12, 1, 3, 32, 32)).astype(np.float16)
    return r, x, y, recaptured


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_weights(tiny_run, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    whole, whole_losses, _ = vision.train_network(*tiny_run)
    assert list(tmp_path.iterdir()) == []  # a finished run leaves no checkpoint behind

    save = vision._save_checkpoint

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        raise Stopped

    monkeypatch.setattr(vision, "_save_checkpoint", save_then_stop)
    with pytest.raises(Stopped):
        vision.train_network(*tiny_run)
    assert len(list(tmp_path.glob("retina-*.pt"))) == 1
    monkeypatch.setattr(vision, "_save_checkpoint", save)

    resumed, resumed_losses, earlier_seconds = vision.train_network(*tiny_run)
    assert resumed_losses == whole_losses
    assert earlier_seconds > 0  # the card's training time counts the run that was stopped too
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert list(tmp_path.iterdir()) == []


def test_a_changed_recipe_or_input_does_not_resume_another_runs_checkpoint(tiny_run):
    r, x, y, recaptured = tiny_run
    here = vision.checkpoint_path(r, x, y, recaptured)
    assert here != vision.checkpoint_path(dataclasses.replace(r, learning_rate=1e-3), x, y, recaptured)
    assert here != vision.checkpoint_path(r, x, y[::-1].copy(), recaptured)
    assert here != vision.checkpoint_path(r, x + 1, y, recaptured)  # a changed transform: other pixels
    assert here != vision.checkpoint_path(r, x, y, recaptured + 1)
