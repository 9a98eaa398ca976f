"""predictors.training.tabular_data: the Pima and heart-disease rows, as the schemas read them."""
from __future__ import annotations

from predictors.inputs import TABULAR_SCHEMAS
from predictors.training.tabular_data import load_heart, load_pima


def test_pima_rows_labels_and_zeros_as_missing():
    X, y = load_pima()
    assert X.shape == (768, 8) and int(y.sum()) == 268
    assert list(X.columns) == TABULAR_SCHEMAS["diabetes"].feature_names
    assert X.isna().sum().to_dict() == {"pregnancies": 0, "glucose": 5, "blood_pressure": 35, "skin_thickness": 227,
                                        "insulin": 374, "bmi": 11, "diabetes_pedigree": 0, "age": 0}
    assert (X["pregnancies"] == 0).sum() > 100  # a zero pregnancy count is a real zero


def test_heart_rows_sites_and_category_mapping():
    X, y, sites = load_heart()
    assert X.shape == (920, 13)
    assert {s: int((sites == s).sum()) for s in set(sites)} == {
        "Cleveland": 304, "Hungary": 293, "Switzerland": 123, "VA Long Beach": 200}
    schema = TABULAR_SCHEMAS["heart"]
    assert list(X.columns) == schema.feature_names
    assert set(X["chest_pain_type"].dropna()) == {1.0, 2.0, 3.0, 4.0}
    assert set(X["thal"].dropna()) == {3.0, 6.0, 7.0}
    assert set(X["sex"]) == {0.0, 1.0}
    first = X.iloc[0]  # Cleveland row 1: 63, male, typical angina, ..., fixed defect
    assert (first["age"], first["sex"], first["chest_pain_type"], first["thal"]) == (63, 1, 1, 6)
    assert X.loc[sites == "Switzerland", "cholesterol"].isna().all()  # recorded as 0 there
    assert 0.4 < y[sites == "Cleveland"].mean() < 0.5
