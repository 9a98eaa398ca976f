"""Train any of the four demo models into an artifacts directory."""
from __future__ import annotations

import logging
from pathlib import Path
from ..catalogue import IMAGE, TABULAR
from ..serving.artifacts import Card
from .tabular import train_tabular
from .vision import train_image_model

log = logging.getLogger(__name__)

ALL = TABULAR + IMAGE


def train_models(names: list[str], out_root: Path, quick: bool = False, workers: int = 2,
                 from_weights: bool = False) -> dict[str, Card]:
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if from_weights and (quick or set(names) - set(IMAGE)):
        raise ValueError("--from-weights re-exports full image models only (retina, ecg)")
    cards = {}
    for name in names:
        log.info("training %s%s into %s", name, " (quick)" if quick else "", out_root / name)
        if name in TABULAR:
            cards[name] = train_tabular(name, out_root / name, quick=quick)
        else:
            cards[name] = train_image_model(name, out_root / name, quick=quick, workers=workers,
                                            from_weights=from_weights)
    return cards
