"""Bring your own weights: turn a torchvision state_dict or an XGBoost model into an artifact."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xgboost as xgb

from predictors.catalogue import SPECS
from predictors.images.decode import ImageRejected, decode
from predictors.images.transform import model_input
from predictors.inputs import TABULAR_SCHEMAS
from predictors.serving.artifacts import Card, publish

from . import cards, domain, synth_ecg, synth_fundus
from .export import ExportMismatch, export_onnx, quantize_int8, with_activation_map
from .vision import build_network, ecg_spec, onnx_probabilities, retina_spec

log = logging.getLogger(__name__)

# What the served network of each image model is, what input the weights' size makes, and the card's task.
IMAGE_MODELS = {
    "retina": ("efficientnet_lite0", retina_spec,
               "diabetic retinopathy grade (International Clinical DR scale, 0-4) from a colour fundus photo"),
    "ecg": ("resnet50", ecg_spec, "cardiac finding from a 12-lead ECG printout image"),
}
# Calibration images when no folder is given: synthetic pictures of the model's kind.
SYNTHETIC = {"fundus": synth_fundus.generate, "ecg": synth_ecg.generate}
CALIBRATION_LIMIT = 64
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class ImportFailed(Exception):
    """The file cannot become an artifact; the message says why in the user's terms."""


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ImportFailed(f"{path.name} is not a PyTorch state_dict file torch.load can read safely: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImportFailed(f"{path.name} does not hold a state_dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _calibration_images(name: str, spec: dict[str, Any], directory: Path | None) -> tuple[np.ndarray, str]:
    arrays = []
    if directory is not None:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:CALIBRATION_LIMIT]
        for path in files:
            try:
                image = decode(path.read_bytes(), max_bytes=50_000_000, max_pixels=100_000_000).image
            except ImageRejected as exc:
                log.warning("skipping calibration file %s: %s", path.name, exc.message)
                continue
            arrays.append(model_input(image, spec)[0])
        if not arrays:
            raise ImportFailed(f"no readable images in {directory}")
        return np.stack(arrays), f"{len(arrays)} images from {directory.name}/"
    make = SYNTHETIC[SPECS[name].input]
    classes = len(SPECS[name].labels)
    for i in range(16):
        arrays.append(model_input(make(i % classes, 500_000 + i), spec)[0])
    return np.stack(arrays), "16 synthetic images (no --calibration folder given)"


def import_image_model(name: str, state_dict: Path, out_dir: Path, calibration_dir: Path | None = None,
                       input_size: int = 224) -> Card:
    architecture, spec_for, task = IMAGE_MODELS[name]
    labels, referable_grade = SPECS[name].labels, SPECS[name].referable_grade
    spec = spec_for(input_size)
    network = build_network(architecture, len(labels))
    result = network.load_state_dict(_load_state_dict(state_dict), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ImportFailed(
            f"the weights do not fit {architecture} with {len(labels)} outputs: "
            f"missing {result.missing_keys[:5]}{'…' if len(result.missing_keys) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}{'…' if len(result.unexpected_keys) > 5 else ''}")
    calibration, calibration_source = _calibration_images(name, spec, calibration_dir)

    with publish(out_dir) as staging:
        fp32_path, int8_path = staging / "model.fp32.onnx", staging / "model.onnx"
        try:
            export_onnx(with_activation_map(network, architecture), fp32_path, spec,
                        calibration[:4].astype(np.float32))
        except (RuntimeError, ExportMismatch) as exc:
            raise ImportFailed(f"the weights load but cannot be exported to ONNX: {str(exc).splitlines()[0]}") from exc
        quantize_int8(fp32_path, int8_path, calibration.astype(np.float32))
        agreement = float((onnx_probabilities(fp32_path, calibration).argmax(1) ==
                           onnx_probabilities(int8_path, calibration).argmax(1)).mean())
        if agreement >= 0.99:
            fp32_path.unlink()
            served = "int8"
        else:
            int8_path.unlink()
            fp32_path.rename(int8_path)
            served = "fp32"
        # Its domain is what it was imported with: half the calibration pictures fit the score,
        # the other half place its (quick-build) threshold.
        no_captures = calibration[:0]
        domain_section = domain.fit_and_add(
            name, int8_path, calibration[::2], no_captures, calibration[1::2], no_captures, seed=0, quick=True,
            validated_on=f"the {calibration_source} it was imported with (HealthOracle has not validated it)")
        card = Card.new(
            name=name, version=cards.version_for(int8_path), kind="onnx_image", task=task, model_file="model.onnx",
            labels=labels, input_spec=spec, plots={}, library_versions=cards.library_versions(), sections={
                "output": cards.IMAGE_OUTPUT,
                "metrics": {"note": "imported weights: HealthOracle has not evaluated them; attach the metrics "
                                    "from where they were trained"},
                "quantization": {"served": served, "int8_fp32_top1_agreement_on_calibration": round(agreement, 4),
                                 "calibration_source": calibration_source,
                                 "method": "onnxruntime static quantization, QDQ, per-channel int8"},
                "calibration": {"method": "none: imported weights, and no labelled images to calibrate them on",
                                "temperature": 1.0},
                "decision": {"split": "none: HealthOracle has not evaluated imported weights; the floor of 0.5 is "
                                      "not a validated threshold", "uncertain_below": 0.5,
                             **({"referable_threshold": 0.5, "not_referable_below": 0.5}
                                if referable_grade is not None else {})},
                "domain": domain_section,
                "data": {"source": f"imported state_dict {state_dict.name}", "synthetic": False},
                "training": {"architecture": architecture, "imported_from": state_dict.name},
                "intended_use": "Imported model served by HealthOracle. Its fitness for any use is the "
                                "responsibility of whoever trained it; HealthOracle is not a medical device.",
            })
        card.write(staging)
    return card


def import_tabular_model(name: str, model_file: Path, out_dir: Path) -> Card:
    schema = TABULAR_SCHEMAS[name]
    booster = xgb.Booster()
    try:
        booster.load_model(str(model_file))
    except xgb.core.XGBoostError as exc:
        raise ImportFailed(f"{model_file.name} is not an XGBoost model file: {str(exc).splitlines()[0]}") from exc
    expected = schema.feature_names
    if booster.num_features() != len(expected):
        raise ImportFailed(f"the model takes {booster.num_features()} features; {name} needs {len(expected)}: "
                           f"{', '.join(expected)}")
    if booster.feature_names and list(booster.feature_names) != expected:
        raise ImportFailed(f"the model's features {booster.feature_names} are not {name}'s {expected} in order")
    booster.feature_names = expected
    with publish(out_dir) as staging:
        booster.save_model(staging / "model.ubj")
        card = Card.new(
            name=name, version=cards.version_for(staging / "model.ubj"), kind="xgboost_tabular",
            task=f"probability of {schema.positive_label}", model_file="model.ubj",
            labels=[schema.negative_label, schema.positive_label], input_spec={"features": expected, "missing": "NaN"},
            plots={}, library_versions=cards.library_versions(), sections={
                "metrics": {"note": "imported model: HealthOracle has not evaluated it"},
                "data": {"source": f"imported XGBoost model {model_file.name}"},
                "training": {"imported_from": model_file.name},
                "intended_use": "Imported model served by HealthOracle; not a medical device.",
            })
        card.write(staging)
    return card
