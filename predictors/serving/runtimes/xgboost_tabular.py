"""XGBoost runtime for the tabular models: probability plus TreeSHAP contributions.

It calls XGBoost's own library (libxgboost, from the installed xgboost wheel) through its
documented C API, not through the `xgboost` Python package: that package imports NumPy and
SciPy (0.39 s of CPU on one core, about 4 s on the free instance's tenth of a CPU) before the
first form can be answered, and a form is one row of at most 13 numbers. The booster, the
prediction and the TreeSHAP contributions are XGBoost's, computed by the same library code
the Python package calls (tests/serving/test_runtimes.py holds both equal).
"""
from __future__ import annotations

import ctypes
import importlib.util
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from predictors.serving.artifacts import Artifact, ArtifactError

from . import RuntimeOptions

_ULONG = ctypes.c_uint64  # bst_ulong
# XGBoosterPredictFromDMatrix's prediction types (c_api.h): the transformed value and the SHAP values.
_VALUE, _CONTRIBUTIONS = 0, 2


@dataclass(frozen=True)
class TabularOutput:
    probability: float
    contributions: dict[str, float]  # log-odds each feature added, TreeSHAP
    baseline: float  # log-odds before any feature


class XGBoostLibraryError(Exception):
    """libxgboost is missing, or refused a call; the message is XGBoost's own."""


def library_path() -> Path:
    """libxgboost inside the installed xgboost package, found without importing the package
    (the wheel's layout: xgboost/lib/libxgboost.so, its OpenMP beside it in xgboost*.libs)."""
    spec = importlib.util.find_spec("xgboost")
    if spec is None or not spec.submodule_search_locations:
        raise XGBoostLibraryError("the xgboost package is not installed")
    for folder in spec.submodule_search_locations:
        for name in ("libxgboost.so", "libxgboost.dylib", "xgboost.dll"):
            if (Path(folder) / "lib" / name).is_file():
                return Path(folder) / "lib" / name
    raise XGBoostLibraryError(f"no libxgboost in {list(spec.submodule_search_locations)}")


_library: ctypes.CDLL | None = None
_library_lock = threading.Lock()


def _lib() -> ctypes.CDLL:
    global _library
    with _library_lock:
        if _library is None:
            lib = ctypes.CDLL(str(library_path()))
            lib.XGBGetLastError.restype = ctypes.c_char_p
            _library = lib
        return _library


def _call(function: str, *args: object) -> None:
    lib = _lib()
    if getattr(lib, function)(*args) != 0:
        raise XGBoostLibraryError(lib.XGBGetLastError().decode("utf-8", "replace").strip())


class _Row:
    """One row of float32 features as XGBoost's array interface describes it (NaN is missing)."""

    def __init__(self, values: Sequence[float]):
        self.buffer = (ctypes.c_float * len(values))(*[math.nan if v is None else float(v) for v in values])
        self.interface = json.dumps({"data": [ctypes.addressof(self.buffer), True], "shape": [1, len(values)],
                                     "typestr": "<f4", "version": 3}).encode()


class XGBoostTabular:
    def __init__(self, handle: ctypes.c_void_p, features: list[str], size_bytes: int):
        self._handle = handle
        self._features = features
        # XGBoost's predictions from a DMatrix share the booster's prediction cache: one at a time.
        self._lock = threading.Lock()
        self.size_bytes = size_bytes

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "XGBoostTabular":
        features = list(artifact.input_spec["features"])
        try:
            handle = ctypes.c_void_p()
            _call("XGBoosterCreate", None, _ULONG(0), ctypes.byref(handle))
        except (OSError, XGBoostLibraryError) as exc:
            raise ArtifactError(f"XGBoost cannot start: {exc}") from exc
        model = cls(handle, features, artifact.model_path.stat().st_size)  # freed with the object
        try:
            _call("XGBoosterLoadModel", handle, str(artifact.model_path).encode())
            _call("XGBoosterSetParam", handle, b"nthread", b"1")
            names, count = model._feature_names(), _ULONG()
            _call("XGBoosterGetNumFeature", handle, ctypes.byref(count))
        except XGBoostLibraryError as exc:
            raise ArtifactError(f"XGBoost cannot read {artifact.model_path.name}: {str(exc).splitlines()[0]}") from exc
        if names and names != features:
            raise ArtifactError(f"the model's features {names} differ from the card's {features}")
        if count.value != len(features):
            raise ArtifactError(f"the model expects {count.value} features, the card lists {len(features)}")
        return model

    def _feature_names(self) -> list[str]:
        length, names = _ULONG(), ctypes.POINTER(ctypes.c_char_p)()
        _call("XGBoosterGetStrFeatureInfo", self._handle, b"feature_name", ctypes.byref(length), ctypes.byref(names))
        return [names[i].decode() for i in range(length.value)]

    def predict(self, features: Sequence[float]) -> TabularOutput:
        row = _Row(features)
        with self._lock:
            probability = self._predict(row, _VALUE)[0]
            contributions = self._predict(row, _CONTRIBUTIONS)
        return TabularOutput(
            probability=probability,
            contributions={name: v for name, v in zip(self._features, contributions[:-1], strict=True)},
            baseline=contributions[-1],
        )

    def _predict(self, row: _Row, kind: int) -> list[float]:
        matrix = ctypes.c_void_p()
        _call("XGDMatrixCreateFromDense", row.interface, b'{"missing": NaN, "nthread": 1}', ctypes.byref(matrix))
        try:
            shape, dims, result = ctypes.POINTER(_ULONG)(), _ULONG(), ctypes.POINTER(ctypes.c_float)()
            config = json.dumps({"type": kind, "training": False, "iteration_begin": 0, "iteration_end": 0,
                                 "strict_shape": False}).encode()
            _call("XGBoosterPredictFromDMatrix", self._handle, matrix, config, ctypes.byref(shape),
                  ctypes.byref(dims), ctypes.byref(result))
            size = math.prod(shape[i] for i in range(dims.value))
            return [float(result[i]) for i in range(size)]  # copied out: the buffer is the booster's
        finally:
            _call("XGDMatrixFree", matrix)

    def __del__(self) -> None:
        if _library is not None and self._handle:
            _library.XGBoosterFree(self._handle)
