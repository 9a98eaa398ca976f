"""predictors.serving.artifacts.publish and Card: a model directory is replaced whole or not at all."""
from __future__ import annotations

import json

import pytest

from predictors.serving.artifacts import Card, open_artifact, publish


def write_model(directory, weights: bytes, plots: dict[str, str]) -> Card:
    """What a writer does inside `publish`: the model file, its plots, then the card over them."""
    (directory / "model.ubj").write_bytes(weights)
    for plot in plots.values():
        (directory / plot).parent.mkdir(parents=True, exist_ok=True)
        (directory / plot).write_bytes(b"\x89PNG")
    card = Card.new(name="heart", version=weights.decode(), kind="xgboost_tabular", task="probability of disease",
                    model_file="model.ubj", labels=["no disease", "disease"], input_spec={"features": ["age"]},
                    plots=plots, library_versions={"python": "3.11"}, sections={"metrics": {"auc": 0.9}})
    card.write(directory)
    return card


def test_a_published_artifact_verifies_and_replaces_the_old_one_whole(tmp_path):
    served = tmp_path / "heart"
    with publish(served) as staging:
        write_model(staging, b"v1", {"roc": "plots/roc.png"})
    with publish(served) as staging:
        card = write_model(staging, b"v2", {})
    artifact = open_artifact("heart", served)
    assert artifact.version == "v2" and artifact.card == card.fields
    assert list(artifact.card)[:7] == ["name", "version", "kind", "task", "model_file", "labels", "input"]
    assert not (served / "plots").exists(), "the old artifact's files must not survive into the new one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heart"]


def test_a_writer_that_fails_halfway_leaves_the_served_artifact_as_it_was(tmp_path):
    served = tmp_path / "heart"
    with publish(served) as staging:
        write_model(staging, b"v1", {})
    before = {p.name: p.read_bytes() for p in served.iterdir()}
    with pytest.raises(RuntimeError), publish(served) as staging:
        (staging / "model.ubj").write_bytes(b"half of v2")
        raise RuntimeError("training failed")
    assert {p.name: p.read_bytes() for p in served.iterdir()} == before
    assert open_artifact("heart", served).version == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heart"]


def test_a_card_is_written_as_plain_json_whatever_numbers_training_hands_it(tmp_path):
    np = pytest.importorskip("numpy")
    with publish(tmp_path / "heart") as staging:
        (staging / "model.ubj").write_bytes(b"v1")
        card = Card.new(name="heart", version="v1", kind="xgboost_tabular", task="t", model_file="model.ubj",
                        labels=["a", "b"], input_spec={}, plots={}, library_versions={},
                        sections={"metrics": {"rows": np.int64(3), "counts": np.array([1, 2]), "auc": np.float32(0.5)}})
        card.write(staging)
    assert json.loads((tmp_path / "heart" / "card.json").read_text())["metrics"] == {
        "rows": 3, "counts": [1, 2], "auc": 0.5}
    assert card.fields["metrics"]["counts"] == [1, 2]
