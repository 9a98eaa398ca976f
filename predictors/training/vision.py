"""Image models: generate data, train a torchvision network on CPU, export, quantize, card.

The pixels a network trains on come from predictors.imaging.model_input with the same
input spec the card ships, so serving cannot drift from training.
"""
from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torchvision
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score
from tqdm import tqdm

from predictors.imaging import model_input

from . import cards, synth_ecg, synth_fundus
from .export import export_onnx, quantize_int8

log = logging.getLogger(__name__)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SEED = 20261123
TEST_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class Recipe:
    """Everything that decides one image model; the card records all of it."""

    name: str
    architecture: str
    labels: list[str]
    input_spec: dict[str, Any]
    train_per_class: int
    test_per_class: int
    renders_per_record: int  # ECG: printouts of one simulated record (its windows differ)
    epochs: int
    batch_size: int
    learning_rate: float
    task: str
    data_note: str
    extra_metrics: tuple[str, ...] = field(default_factory=tuple)


def retina_spec(size: int) -> dict[str, Any]:
    return {"height": size, "width": size, "resize": "shorter_side_then_centre_crop",
            "resize_shorter_side": int(round(size * 256 / 224)), "interpolation": "bilinear",
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "RGB", "layout": "NCHW",
            "scale": "pixel / 255, then (x - mean) / std"}


def ecg_spec(size: int) -> dict[str, Any]:
    return {"height": size, "width": size, "resize": "stretch", "interpolation": "bilinear",
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "RGB", "layout": "NCHW",
            "scale": "pixel / 255, then (x - mean) / std"}


def recipe(name: str, quick: bool) -> Recipe:
    if name == "retina":
        return Recipe(
            name="retina", architecture="efficientnet_b0", labels=synth_fundus.GRADES,
            input_spec=retina_spec(96 if quick else 224),
            train_per_class=8 if quick else 200, test_per_class=4 if quick else 50, renders_per_record=1,
            epochs=1 if quick else 5, batch_size=4 if quick else 16, learning_rate=1e-3,
            task="diabetic retinopathy grade (International Clinical DR scale, 0-4) from a colour fundus photo",
            data_note="synthetic fundus photographs from predictors/training/synth_fundus.py",
            extra_metrics=("quadratic_weighted_kappa", "referable_dr"))
    if name == "ecg":
        return Recipe(
            name="ecg", architecture="resnet50", labels=synth_ecg.CLASSES,
            input_spec=ecg_spec(96 if quick else 224),
            train_per_class=2 if quick else 60, test_per_class=1 if quick else 15,
            renders_per_record=3 if quick else 4,
            epochs=1 if quick else 3, batch_size=4 if quick else 12, learning_rate=1e-3,
            task="cardiac finding from a 12-lead ECG printout image",
            data_note="synthetic 12-lead printouts: neurokit2 ECGSYN signals rendered with matplotlib "
                      "by predictors/training/synth_ecg.py")
    raise ValueError(f"no image recipe named {name!r}")


# --- data -----------------------------------------------------------------------------

def _retina_item(args: tuple[int, int, dict[str, Any]]) -> list[np.ndarray]:
    grade, seed, spec = args
    return [model_input(synth_fundus.generate(grade, seed), spec)[0].astype(np.float16)]


def _ecg_item(args: tuple[int, int, dict[str, Any], int]) -> list[np.ndarray]:
    label, seed, spec, renders = args
    record = synth_ecg.simulate(label, seed)
    return [model_input(synth_ecg.render(record, seed * 97 + r), spec)[0].astype(np.float16)
            for r in range(renders)]


def build_split(r: Recipe, test: bool, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate one split in worker processes; test seeds never overlap training seeds."""
    per_class = r.test_per_class if test else r.train_per_class
    offset = TEST_SEED_OFFSET if test else 0
    renders = min(2, r.renders_per_record) if test else r.renders_per_record
    if r.name == "retina":
        fn: Callable[..., list[np.ndarray]] = _retina_item
        jobs: list[tuple] = [(c, offset + i, r.input_spec) for c in range(len(r.labels)) for i in range(per_class)]
    else:
        fn = _ecg_item
        jobs = [(c, offset + i, r.input_spec, renders) for c in range(len(r.labels)) for i in range(per_class)]
    images, labels = [], []
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        desc = f"{r.name} {'test' if test else 'train'} data"
        for job, arrays in tqdm(zip(jobs, pool.imap(fn, jobs), strict=True), total=len(jobs), desc=desc, mininterval=5):
            images.extend(arrays)
            labels.extend([job[0]] * len(arrays))
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _batches(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    for start in range(0, len(y), size):
        idx = order[start:start + size]
        yield torch.from_numpy(x[idx].astype(np.float32)), torch.from_numpy(y[idx])


# --- model ----------------------------------------------------------------------------

def build_network(architecture: str, classes: int) -> torch.nn.Module:
    """A torchvision network with no pretrained weights, initialised for few classes.

    torchvision sizes EfficientNet's classifier init for 1,000 classes; with four or five
    its first logits reach ±15 and training starts far worse than chance. A small
    normal init, and zero-initialised residual branches for ResNet, start it near chance.
    """
    constructor = getattr(torchvision.models, architecture)
    extra = {"zero_init_residual": True} if architecture.startswith("resnet") else {}
    network = constructor(weights=None, num_classes=classes, **extra)
    head = network.fc if architecture.startswith("resnet") else network.classifier[-1]
    torch.nn.init.normal_(head.weight, std=0.01)
    torch.nn.init.zeros_(head.bias)
    return network


def train_network(r: Recipe, x: np.ndarray, y: np.ndarray) -> tuple[torch.nn.Module, list[float]]:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = build_network(r.architecture, len(r.labels))
    optimiser = torch.optim.AdamW(model.parameters(), lr=r.learning_rate, weight_decay=1e-4)
    steps = r.epochs * int(np.ceil(len(y) / r.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=r.learning_rate, total_steps=steps,
                                                   pct_start=0.2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    losses = []
    model.train()
    for epoch in range(r.epochs):
        total, count = 0.0, 0
        bar = tqdm(_batches(x, y, r.batch_size, rng), total=int(np.ceil(len(y) / r.batch_size)),
                   desc=f"{r.name} epoch {epoch + 1}/{r.epochs}", mininterval=10)
        for xb, yb in bar:
            optimiser.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            # From-scratch networks at a one-cycle peak can take one wild step; clip it.
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(yb)
            count += len(yb)
            bar.set_postfix(loss=f"{total / count:.3f}")
        losses.append(total / count)
        log.info("%s epoch %d: mean training loss %.4f", r.name, epoch + 1, losses[-1])
    return model.eval(), losses


@torch.no_grad()
def torch_probabilities(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    out = [torch.softmax(model(xb), dim=1).numpy() for xb, _ in _batches(x, np.zeros(len(x), dtype=np.int64), 32, None)]
    return np.concatenate(out)


def onnx_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def classification_metrics(r: Recipe, y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    metrics: dict[str, Any] = {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", labels=range(len(r.labels)), zero_division=0)), 4),
        "confusion_matrix": confusion_matrix(y, pred, labels=range(len(r.labels))).tolist(),
    }
    if "quadratic_weighted_kappa" in r.extra_metrics:
        metrics["quadratic_weighted_kappa"] = round(float(cohen_kappa_score(y, pred, weights="quadratic")), 4)
    if "referable_dr" in r.extra_metrics:
        truth, called = y >= 2, pred >= 2
        metrics["referable_dr"] = {
            "definition": "grade >= 2 (moderate NPDR or worse)",
            "sensitivity": round(float((called & truth).sum() / max(1, truth.sum())), 4),
            "specificity": round(float((~called & ~truth).sum() / max(1, (~truth).sum())), 4),
        }
    return metrics


def train_image_model(name: str, out_dir: Path, quick: bool = False, workers: int = 2) -> dict[str, Any]:
    """Generate, train, evaluate, export, quantize and write the artifact of one image model."""
    r = recipe(name, quick)
    started = time.monotonic()
    x_train, y_train = build_split(r, test=False, workers=workers)
    x_test, y_test = build_split(r, test=True, workers=workers)
    log.info("%s: %d training and %d test images generated in %.0f s", name, len(y_train), len(y_test),
             time.monotonic() - started)
    torch.set_num_threads(max(1, workers))
    model, losses = train_network(r, x_train, y_train)
    fp32_metrics = classification_metrics(r, y_test, torch_probabilities(model, x_test))

    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "plots").mkdir(parents=True)
    fp32_path = staging / "model.fp32.onnx"
    export_onnx(model, fp32_path, r.input_spec)
    calibration = x_train[np.random.default_rng(SEED).permutation(len(x_train))[: min(len(x_train), 64)]]
    int8_path = staging / "model.onnx"
    quantize_int8(fp32_path, int8_path, calibration.astype(np.float32))

    fp32_probs = onnx_probabilities(fp32_path, x_test)
    int8_probs = onnx_probabilities(int8_path, x_test)
    agreement = float((fp32_probs.argmax(1) == int8_probs.argmax(1)).mean())
    onnx_fp32 = classification_metrics(r, y_test, fp32_probs)
    onnx_int8 = classification_metrics(r, y_test, int8_probs)
    worst_drop = max(onnx_fp32[k] - onnx_int8[k] for k in ("accuracy", "macro_f1"))
    keep_int8 = agreement >= 0.99 and worst_drop <= 0.01
    if keep_int8:
        fp32_path.unlink()
        served, served_metrics = "int8", onnx_int8
        reason = "int8 agrees with fp32 on >= 99% of held-out images and loses <= 1 point"
    else:
        int8_path.unlink()
        fp32_path.rename(int8_path)
        served, served_metrics = "fp32", onnx_fp32
        reason = (f"int8 top-1 agreement {agreement:.1%} / metric drop {worst_drop * 100:.1f} points missed the "
                  f"99% / 1-point bar, so the fp32 graph is served")
    log.info("%s: serving %s (%s)", name, served, reason)
    cards.plot_confusion(staging / "plots" / "confusion.png", np.array(served_metrics["confusion_matrix"]),
                         r.labels, f"{name}: held-out synthetic test set")

    card = {
        "name": name,
        "version": cards.version_for(int8_path),
        "kind": "onnx_image",
        "task": r.task,
        "model_file": "model.onnx",
        "labels": r.labels,
        "input": r.input_spec,
        "output": "logits, one per label in order; the runtime applies softmax",
        "metrics": {
            "split": f"held-out synthetic test set: {len(y_test)} images from generator seeds never used "
                     f"for training ({r.test_per_class} per class)",
            "served": served_metrics,
            "pytorch_fp32": fp32_metrics,
        },
        "quantization": {
            "served": served, "decision": reason, "method": "onnxruntime static quantization, QDQ format, "
            "per-channel int8 weights, int8 activations, MinMax calibration",
            "calibration_images": len(calibration), "calibration_source": "training images",
            "int8_fp32_top1_agreement": round(agreement, 4),
            "onnx_fp32": onnx_fp32, "onnx_int8": onnx_int8,
        },
        "data": {"source": r.data_note, "synthetic": True, "train_images": len(y_train),
                 "test_images": len(y_test),
                 "class_counts_train": np.bincount(y_train, minlength=len(r.labels)).tolist()},
        "training": {"architecture": f"torchvision.models.{r.architecture}(weights=None)",
                     "epochs": r.epochs, "batch_size": r.batch_size, "optimiser": "AdamW, weight decay 1e-4",
                     "schedule": f"one-cycle, max lr {r.learning_rate}", "loss": "cross-entropy, label smoothing 0.05",
                     "epoch_losses": [round(v, 4) for v in losses], "seed": SEED, "device": "cpu",
                     "quick": quick, "wall_seconds": round(time.monotonic() - started)},
        "intended_use": cards.INTENDED_USE_SYNTHETIC,
        "plots": {"confusion": "plots/confusion.png"},
    }
    cards.write_card(staging, card, ["plots/confusion.png"])
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return card
