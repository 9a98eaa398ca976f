"""The real labelled photographs in ../shared/data/, read in place, and honest splits of them.

Images are read through predictors.images.decode, the web runtime's own decoder, so a
model trains on the pixels it will be served. Splits keep every group of duplicates and
near-duplicates (images whose fine structure correlates closely, structure_map) on one side, because both data sets are known to
hold repeats: a test image whose twin was trained on measures memory, not skill.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold

from predictors.images.decode import decode

log = logging.getLogger(__name__)

DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"
FUNDUS_DIR = "fundus-idrid"
ECG_DIR = "ecg-khan"
# The source folder names of the ECG set, in the order of our model's labels.
ECG_FOLDERS = ["Normal", "Abnormal_Heartbeat", "Myocardial_Infarction", "History_of_MI"]
DECODE_LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}
# Structure maps correlating above these are one picture for splitting. Chosen from the
# nearest-neighbour distribution: IDRiD has one pair at 0.90 and then nothing above 0.72;
# every Khan page shares one layout, so ECG neighbours run smoothly up to 0.96 and the
# threshold takes the closest ~1% of them.
NEAR_DUPLICATE_CORRELATION = {"retina": 0.85, "ecg": 0.95}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int
    source_split: str  # the data set's own split ("train"/"test" for IDRiD, "all" for ECG)


class DataMissing(Exception):
    """The shared data folder is not where training expects it."""


def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        raise DataMissing(f"real training data not found at {DATA_ROOT} (../shared/data beside the repository)")
    return DATA_ROOT


def fundus_images() -> list[LabelledImage]:
    """IDRiD disease-grading photos with their official grade and train/test split."""
    root = data_root() / FUNDUS_DIR
    with (root / "labels.csv").open(newline="") as handle:
        return [LabelledImage(root / row["file"], int(row["grade"]), row["idrid_split"])
                for row in csv.DictReader(handle)]


def ecg_images() -> list[LabelledImage]:
    """Khan et al. 12-lead printout photos, labelled by their source class folder."""
    root = data_root() / ECG_DIR
    with (root / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [LabelledImage(root / row["file"], ECG_FOLDERS.index(row["file"].split("/")[0]), "all")
            for row in rows]


def labelled_images(kind: str) -> list[LabelledImage]:
    """The photos of one kind of picture ("fundus" or "ecg", a spec's input)."""
    return {"fundus": fundus_images, "ecg": ecg_images}[kind]()


def load_rgb(path: Path) -> Image.Image:
    return decode(path.read_bytes(), **DECODE_LIMITS).image


def structure_map(model_input: np.ndarray) -> np.ndarray:
    """A unit-length fingerprint of an image's fine structure (vessels, lesions, traces).

    Grey model input at quarter resolution, local mean removed (a high-pass), centre 70%
    only: the camera's circular rim and the shared report layout would otherwise make
    every pair look alike. Re-scans, re-encodes and repeat photos of one eye or one
    recording keep this fingerprint; different patients do not.
    """
    # Rounded to float16 as training holds its inputs, so a map is the same whoever computes it.
    grey = model_input.astype(np.float16).astype(np.float32).mean(axis=0)
    h, w = (grey.shape[0] // 4) * 4, (grey.shape[1] // 4) * 4
    small = grey[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))
    padded = np.pad(small, 2, mode="edge")
    local_mean = sum(padded[i:i + small.shape[0], j:j + small.shape[1]] for i in range(5) for j in range(5)) / 25
    detail = (small - local_mean)[int(small.shape[0] * 0.15):int(small.shape[0] * 0.85),
                                  int(small.shape[1] * 0.15):int(small.shape[1] * 0.85)].ravel()
    detail = detail - detail.mean()
    return detail / max(float(np.linalg.norm(detail)), 1e-8)


def duplicate_groups(maps: np.ndarray, threshold: float) -> np.ndarray:
    """Group ids joining every pair of images whose structure maps correlate above threshold."""
    similarity = maps @ maps.T
    parent = list(range(len(maps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(similarity, k=1) > threshold), strict=True):
        parent[find(int(i))] = find(int(j))
    roots = [find(i) for i in range(len(maps))]
    remap = {root: n for n, root in enumerate(dict.fromkeys(roots))}
    return np.array([remap[root] for root in roots], dtype=np.int64)


def near_duplicate_groups(name: str, inputs: np.ndarray) -> np.ndarray:
    """Group ids for one data set's model inputs, joined at that data set's threshold."""
    maps = np.stack([structure_map(a) for a in inputs])
    return duplicate_groups(maps, NEAR_DUPLICATE_CORRELATION[name])


def grouped_holdout(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split by group: about `fraction` of each class held out, no group split.

    With fewer images in a class than folds (quick test builds), fewer, larger folds.
    """
    folds = max(2, min(int(round(1 / fraction)), int(np.bincount(labels)[np.unique(labels)].min())))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    keep, held = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(keep), np.sort(held)
