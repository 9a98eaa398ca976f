"""The card page says how far to trust the percentages and how the model does on photos as clinics take them."""
from __future__ import annotations

import json

from predictors.serving.artifacts import write_manifest


def _with_robustness(artifacts, name: str) -> None:
    directory = artifacts / name
    card = json.loads((directory / "card.json").read_text())
    card["robustness"] = {"measured": "2026-11-29", "confident": 0.8, "rows": [
        {"capture": "original", "family": "original", "strength": None, "images": 10, "right": 0.9,
         "uncertain": 0.1, "refused": 0.0, "refused_by": {}, "wrong": 0.0, "confidently_wrong": 0.0},
        {"capture": "brightness 0.3", "family": "brightness", "strength": 0.3, "images": 10, "right": 0.5,
         "uncertain": 0.1, "refused": 0.3, "refused_by": {"ungradable": 0.3}, "wrong": 0.1,
         "confidently_wrong": 0.0},
        {"capture": "tilt 6", "family": "tilt", "strength": 6, "images": 10, "right": 0.6,
         "uncertain": 0.2, "refused": 0.0, "refused_by": {}, "wrong": 0.0, "confidently_wrong": 0.2}]}
    (directory / "card.json").write_text(json.dumps(card))
    write_manifest(directory, list(json.loads((directory / "manifest.json").read_text())["files"]))


def test_the_card_page_shows_calibration_and_the_capture_table(logged_in, artifacts):
    _with_robustness(artifacts, "ecg")
    calibration = json.loads((artifacts / "ecg" / "card.json").read_text())["calibration"]
    page = logged_in.get("/models/ecg/").content.decode()
    assert "How far to trust its percentages" in page and 'data-testid="calibration"' in page
    assert f"{calibration['temperature']:.2f}" in page
    assert f"{calibration['ece_before']:.1%} before, {calibration['ece_after']:.1%} after" in page
    assert "On photos as clinics take them" in page
    table = page[page.index('data-testid="robustness"'):page.index("</table>", page.index('data-testid="robustness"'))]
    assert "as taken" in table and "brightness ×0.3" in table and "tilted 6°" in table
    assert "30% (ungradable 30%)" in table and "<td>20%</td>" in table


def test_a_card_without_capture_figures_shows_no_empty_table(logged_in, artifacts):
    page = logged_in.get("/models/retina/").content.decode()
    assert 'data-testid="robustness"' not in page
