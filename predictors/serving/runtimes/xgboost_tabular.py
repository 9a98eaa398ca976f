"""XGBoost runtime for the tabular models: probability plus TreeSHAP contributions."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import xgboost

from predictors.serving.artifacts import Artifact, ArtifactError

from . import RuntimeOptions


@dataclass(frozen=True)
class TabularOutput:
    probability: float
    contributions: dict[str, float]  # log-odds each feature added, TreeSHAP
    baseline: float  # log-odds before any feature


class XGBoostTabular:
    def __init__(self, booster: xgboost.Booster, features: list[str], size_bytes: int):
        self._booster = booster
        self._features = features
        self._lock = threading.Lock()
        self.size_bytes = size_bytes

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "XGBoostTabular":
        features = list(artifact.input_spec["features"])
        booster = xgboost.Booster()
        try:
            booster.load_model(str(artifact.model_path))
        except xgboost.core.XGBoostError as exc:
            raise ArtifactError(f"XGBoost cannot read {artifact.model_path.name}: {str(exc).splitlines()[0]}") from exc
        booster.set_param({"nthread": 1})
        if booster.feature_names and list(booster.feature_names) != features:
            raise ArtifactError(f"the model's features {booster.feature_names} differ from the card's {features}")
        if booster.num_features() != len(features):
            raise ArtifactError(f"the model expects {booster.num_features()} features, the card lists {len(features)}")
        return cls(booster, features, artifact.model_path.stat().st_size)

    def predict(self, features: np.ndarray) -> TabularOutput:
        row = np.asarray(features, dtype=np.float32).reshape(1, -1)
        probability = float(self._booster.inplace_predict(row, missing=np.nan)[0])
        matrix = xgboost.DMatrix(row, missing=np.nan, feature_names=self._features)
        # DMatrix prediction shares booster state; inplace_predict is documented thread safe, this is not.
        with self._lock:
            contribs = self._booster.predict(matrix, pred_contribs=True)[0]
        return TabularOutput(
            probability=probability,
            contributions={name: float(v) for name, v in zip(self._features, contribs[:-1], strict=True)},
            baseline=float(contribs[-1]),
        )
