"""predictors.serving.artifacts.publish and Card: a model directory is replaced whole or not at all,
when training writes it and when a benchmark records its figures on a card."""
from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from predictors.catalogue import CONFIDENT
from predictors.serving.artifacts import Card, open_artifact, publish

from ..support import SHIPPED


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


def shipped_copy(tmp_path, *names: str):
    """The shipped artifacts named, copied where a test may change them."""
    for name in names:
        shutil.copytree(SHIPPED / name, tmp_path / name)
    return tmp_path


def files_of(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_card_published_again_keeps_the_other_files_and_verifies(tmp_path):
    directory = shipped_copy(tmp_path, "retina") / "retina"
    before = files_of(directory)
    card = Card.read(directory)
    Card({**card.fields, "robustness": {"rows": []}}).publish(directory)
    artifact = open_artifact("retina", directory)
    assert artifact.card == {**card.fields, "robustness": {"rows": []}}
    after = files_of(directory)
    assert {name for name in after if after[name] != before[name]} == {"card.json", "manifest.json"}
    assert set(after) == set(before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["retina"]


def test_the_capture_benchmark_records_its_rows_on_the_card_the_registry_verifies(tmp_path):
    from bench import capture_robustness

    artifacts = shipped_copy(tmp_path, "retina")
    before = Card.read(artifacts / "retina").fields
    rows = [{"capture": "original", "images": 3, "right": 1.0}]
    capture_robustness.write_cards({"retina": rows}, "bench.capture_robustness --write", artifacts)
    card = open_artifact("retina", artifacts / "retina").card
    assert set(card["robustness"]) == {"measured", "command", "confident", "rows"}
    assert card["robustness"]["command"] == "bench.capture_robustness --write"
    assert card["robustness"]["confident"] == CONFIDENT and card["robustness"]["rows"] == rows
    assert {key: value for key, value in card.items() if key != "robustness"} == {
        key: value for key, value in before.items() if key != "robustness"}
    model = card["model_file"]
    assert (artifacts / "retina" / model).read_bytes() == (SHIPPED / "retina" / model).read_bytes()


def test_the_domain_benchmark_records_its_groups_under_the_cards_domain_section(tmp_path):
    from bench import domain_shift

    artifacts = shipped_copy(tmp_path, "retina", "ecg")
    before = {name: Card.read(artifacts / name).fields for name in ("retina", "ecg")}
    row = {"model": "ecg", "domain": "out", "group": "PTB-XL drawn elsewhere: all", "total": True, "images": 4,
           "shares": {"confident": 0.0, "below": 0.25, "uncertain": 0.25, "refused": 0.5},
           "refused_by": {"outside_validated_domain": 2}}
    domain_shift.write_cards([row], "bench.domain_shift --write", artifacts)
    for name in ("retina", "ecg"):
        card = open_artifact(name, artifacts / name).card
        benchmark = card["domain"]["benchmark"]
        assert benchmark["command"] == "bench.domain_shift --write" and benchmark["confident"] == CONFIDENT
        assert {**card["domain"], "benchmark": None} == {**before[name]["domain"], "benchmark": None}
        assert {key: value for key, value in card.items() if key != "domain"} == {
            key: value for key, value in before[name].items() if key != "domain"}
    assert open_artifact("ecg", artifacts / "ecg").card["domain"]["benchmark"]["groups"] == [{
        "title": "Real recordings printed in other machines' layouts by a second renderer", "domain": "out",
        "images": 4,
        "finding": 0.0, "below": 0.25, "uncertain": 0.25, "refused": 0.5,
        "refused_by": {"outside_validated_domain": 0.5}}]
    assert open_artifact("retina", artifacts / "retina").card["domain"]["benchmark"]["groups"] == []


def test_the_domain_benchmark_scores_each_retina_groups_referral_calls_against_the_known_grades(tmp_path):
    """Other-camera photos re-make graded IDRiD photos, so their answers are scored (issue 30 item 3):
    of the photos answered with a call, referable sensitivity and specificity with 95% intervals,
    beside the share answered; a family's total adds its groups' counts; the card keeps them."""
    from bench import domain_shift

    answers = [  # (known grade, HTTP status, body) as the API answered five photos of one look
        (3, 200, {"referable_dr": True, "uncertain": False, "confidence": 0.9}),
        (2, 200, {"referable_dr": False, "uncertain": False, "confidence": 0.7}),
        (4, 200, {"referable_dr": None, "uncertain": True, "confidence": 0.5}),
        (0, 200, {"referable_dr": False, "uncertain": False, "confidence": 0.8}),
        (1, 422, {"error": {"code": "ungradable"}}),
    ]
    calls = [(grade, domain_shift.referral(status, body)) for grade, status, body in answers]
    counts = domain_shift.referral_counts(calls, referable_grade=2)
    figures = domain_shift.referral_figures(counts)
    assert figures["photos"] == 5 and figures["answered"] == 0.6  # 3 of 5 answered with a call
    assert figures["sensitivity"]["value"] == 0.5 and figures["specificity"]["value"] == 1.0
    low, high = figures["sensitivity"]["ci95"]
    assert 0.05 < low < 0.1 and 0.9 < high < 0.95  # Wilson, 1 of 2: 0.0945-0.9055
    assert figures["specificity"]["ci95"][1] == 1.0 and figures["specificity"]["ci95"][0] < 0.25

    group = domain_shift.Group("other camera: greener", "retina", "out", [])
    rows = [domain_shift._row(group, Counter({"confident": 2, "below": 1, "uncertain": 1, "refused:ungradable": 1}),
                              counts) for _ in range(2)]
    total = domain_shift.with_totals(rows)[-1]
    assert total["group"] == "other camera: all" and total["referral"]["counts"] == {
        key: 2 * n for key, n in counts.items()}
    assert total["referral"]["sensitivity"]["value"] == 0.5 and total["referral"]["answered"] == 0.6

    artifacts = shipped_copy(tmp_path, "retina", "ecg")
    domain_shift.write_cards(domain_shift.with_totals(rows), "bench.domain_shift --write", artifacts)
    [shown] = open_artifact("retina", artifacts / "retina").card["domain"]["benchmark"]["groups"]
    assert shown["referral"] == {"answered": 0.6, "sensitivity": total["referral"]["sensitivity"],
                                 "specificity": total["referral"]["specificity"], "referable_photos": 6,
                                 "referable_not_referred": 2}
