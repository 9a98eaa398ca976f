"""A card's figures and data in a clinician's words: how well it does, on whom, where it fails."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .reading import as_list, as_mapping, as_text, humanise, is_number, point_and_interval

# Metrics of an intermediate graph (pytorch_fp32, onnx_int8, ...), not the model the site serves.
TECHNICAL_PREFIXES = ("pytorch_", "onnx_")
# The served graph's figures first: a clinician is shown what the site runs.
PREFERRED_SECTIONS = ("served", "test")
SECTION_TITLES = {
    "served": "On held-out test images",
    "test": "On held-out test data",
    "cross_validation": "Cross-validation at the training site",
}
METRIC_NAMES = {
    "auc": "AUC (area under the ROC curve; 0.5 is chance, 1 is perfect)",
    "auc_mean": "AUC (area under the ROC curve; 0.5 is chance, 1 is perfect)",
    "brier": "Brier score (0 is perfect)",
    "brier_mean": "Brier score (0 is perfect)",
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1 (classes weighted equally)",
    "quadratic_weighted_kappa": "Agreement on grade (quadratic weighted kappa)",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "prevalence": "Share with the outcome",
    "referable_dr": "Referable retinopathy",
    "referable_dr_at_argmax": "Referable retinopathy, from the top grade",
    "referable_dr_auc": "Referable retinopathy: AUC",
    "sensitivity_at_80_specificity": "Sensitivity at 80% specificity",
    "images": "Images",
    "recall": "Found (recall)",
    "support": "Images",
}
PERCENT_METRICS = frozenset({"accuracy", "sensitivity", "specificity", "prevalence", "ppv", "npv",
                             "sensitivity_at_80_specificity", "recall"})
COUNT_METRICS = frozenset({"images", "rows", "positives", "support"})
# Read with the key they qualify, or too fine-grained for the summary (the JSON has them).
FOLDED_METRICS = frozenset({"auc_std", "brier_out_of_fold", "auc_per_fold", "split", "confusion_matrix",
                            # the referral call from the top grade: not the rule the site answers by
                            "referable_dr_at_argmax",
                            "definition"})
DATA_NAMES = {
    "source": "Source", "training_site": "Training site", "rows": "Patients", "positives": "With the outcome",
    "target": "Outcome", "train_images": "Training images", "test_images": "Test images",
    "missing_values": "Missing values", "duplicates_removed": "Duplicates removed",
    "class_counts_train": "Training images per class", "class_counts_test": "Test images per class",
}
# Data keys that say how the data were read and split rather than who they were.
DEVELOPER_DATA = frozenset({"source", "duplicate_groups", "near_duplicate_rule", "test_files", "duplicates_removed",
                            "missing_values"})
# Data keys shown nowhere: `synthetic` is false on every card training writes (real photographs only).
HIDDEN_DATA = frozenset({"synthetic"})
WEAK_CLASS_RECALL = 0.6  # a class recognised less often than this is named under "where it fails"
EXTERNAL_AUC_DROP = 0.05  # an external site this far below cross-validation is named too


@dataclass
class MetricSection:
    title: str
    note: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)
    technical: bool = False  # figures on the images thresholds were tuned on: developer detail


# Fewer cases than this behind a share: "too few to estimate" instead of a percentage or an interval.
TOO_FEW = 10


def share(count: int, total: int) -> str:
    """A share as a card states it: the counts always, the percentage only when enough cases stand behind it."""
    if total < TOO_FEW:
        return f"{count} of {total} (too few to estimate a share)"
    return f"{count} of {total} ({count / total:.0%})"


def format_metric(name: str, value: Any) -> str | None:
    """A metric as text, with its confidence interval when the card gives one; None if unreadable."""
    point, interval = point_and_interval(value)
    if point is None:
        return None
    text = _number(name, point)
    if interval:
        text += f" (95% CI {_number(name, interval[0])} to {_number(name, interval[1])})"
    return text


def _technical(key: str) -> bool:
    return key.startswith(TECHNICAL_PREFIXES)


def _sections_in_order(metrics: Mapping[str, Any]) -> list[str]:
    """Section keys to show: the served model's own figures once, then the rest."""
    keys = [k for k in metrics if not _technical(k) and k != "external_validation"]
    if "served" in keys and "test" in keys:
        keys.remove("test")  # the same test set; "served" is the graph the site runs
    return sorted(keys, key=lambda k: PREFERRED_SECTIONS.index(k) if k in PREFERRED_SECTIONS else len(PREFERRED_SECTIONS))


def metric_sections(metrics: Mapping[str, Any]) -> list[MetricSection]:
    sections = []
    top_level = MetricSection(SECTION_TITLES["test"], as_text(metrics.get("split")))
    for key in _sections_in_order(metrics):
        value = metrics[key]
        if isinstance(value, Mapping) and point_and_interval(value)[0] is None:
            section = MetricSection(SECTION_TITLES.get(key, humanise(key)), as_text(value.get("split")),
                                    technical=key == "validation")
            section.rows = _metric_rows(value)
            if section.rows:
                sections.append(section)
        elif key not in FOLDED_METRICS:
            top_level.rows += _metric_rows({key: value})
    for section in sections:
        if section.title == SECTION_TITLES["served"] and not section.note:
            section.note = top_level.note
    if top_level.rows:
        sections.insert(0, top_level)
    return sections


def _metric_rows(metrics: Mapping[str, Any], parent: str | None = None,
                 counts: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Rows of a metrics mapping; under a `parent` such as "recall" or "support", keys are
    class names and the parent says how their figures read; `counts` are the classes' images."""
    counts = counts or {}
    rows = []
    for key, value in metrics.items():
        if key in FOLDED_METRICS or key.endswith("_point") and key.removesuffix("_point") in metrics:
            continue
        if key == "support" and isinstance(metrics.get("recall"), Mapping):
            continue  # each class's recall is given out of its images
        if isinstance(value, Mapping) and point_and_interval(value)[0] is None:
            prefix = ", ".join(filter(None, [METRIC_NAMES.get(key, humanise(key)), as_text(value.get("definition"))]))
            # A metric's name reads on in lower case ("…: sensitivity"); a class name keeps its own.
            counts = as_mapping(metrics.get("support")) if key == "recall" else {}
            rows += [(f"{prefix}: {_lower_metric(name)}", text)
                     for name, text in _metric_rows(value, parent=key, counts=counts)]
            continue
        if is_number(counts.get(key)):  # a class's recall: out of its own images
            text = _recall_text(value, int(counts[key]))
        else:
            text = format_metric(key if parent is None or key in METRIC_NAMES else parent, value)
        if text is None:
            continue
        spread = metrics.get(key.replace("_mean", "_std")) if key.endswith("_mean") else None
        if isinstance(spread, (int, float)) and not isinstance(spread, bool):
            text += f" ± {_number(key, spread)} across folds"
        rows.append((METRIC_NAMES.get(key, humanise(key)), text))
    return rows


def _recall_text(value: Any, images: int) -> str | None:
    """A class's recall as counts out of its images; its interval only where enough images stand behind
    it to estimate one (TOO_FEW) and the bootstrap gave one of some width."""
    point, interval = point_and_interval(value)
    if point is None or not math.isfinite(point):  # a class without test images has no recall
        return None
    text = share(round(point * images), images)
    if interval and images >= TOO_FEW and interval[0] < interval[1]:
        text += f", 95% CI {interval[0]:.0%} to {interval[1]:.0%}"
    return text


def _lower_metric(name: str) -> str:
    return name[:1].lower() + name[1:] if name in METRIC_NAMES.values() else name


def sites(external: Mapping[str, Any]) -> list[dict[str, str]]:
    sites = []
    for site, figures in external.items():
        figures = as_mapping(figures)
        sites.append({"site": str(site), "rows": as_text(figures.get("rows")),
                      "positives": as_text(figures.get("positives")),
                      "auc": format_metric("auc", figures.get("auc")) or "",
                      "brier": format_metric("brier", figures.get("brier")) or ""})
    return sites


def data_rows(data: Mapping[str, Any]) -> list[tuple[str, tuple[str, str]]]:
    """The data section's rows, each with its card key."""
    rows = []
    for key, value in data.items():
        if key in HIDDEN_DATA:
            continue
        if isinstance(value, Mapping):
            continue  # per-site or per-class breakdowns: shown with the performance, or in the JSON
        if isinstance(value, list):
            if not all(isinstance(v, (str, int, float)) for v in value):
                continue
            value = ", ".join(str(v) for v in value)
        rows.append((key, (DATA_NAMES.get(key, humanise(key)), as_text(value))))
    return [(key, row) for key, row in rows if row[1]]


# The figure a test-against-validation gap is said in: the first a card's validation and test sections share.
GAP_METRICS = ("referable_dr_auc", "auc", "macro_f1", "accuracy")


def validation_gap(metrics: Mapping[str, Any]) -> str:
    """The headline figure on the validation images (its thresholds and calibration were chosen on them)
    against the held-out test images: the test figure is the one to expect, or less."""
    validation = as_mapping(metrics.get("validation"))
    test = next((as_mapping(metrics[k]) for k in PREFERRED_SECTIONS if isinstance(metrics.get(k), Mapping)), {})
    for key in GAP_METRICS:
        tuned, held_out = point_and_interval(validation.get(key))[0], point_and_interval(test.get(key))[0]
        if tuned is not None and held_out is not None:
            name = METRIC_NAMES.get(key, humanise(key)).split(" (")[0]
            return (f"{name} {_number(key, tuned)} on the validation images its thresholds were chosen on, against "
                    f"{_number(key, held_out)} on the test images nobody tuned it on: expect the test figure, or "
                    "less, on your own patients.")
    return ""


def derived_limitations(metrics: Mapping[str, Any], labels: list[str]) -> list[str]:
    """Where the figures show it fails: a class it rarely recognises, a site where it does worse."""
    found = []
    for section in (*(metrics[k] for k in _sections_in_order(metrics)), metrics):
        matrix = as_mapping(section).get("confusion_matrix")
        if matrix is not None:
            found += _weak_classes(matrix, labels)
            break
    reference = point_and_interval(as_mapping(metrics.get("cross_validation")).get("auc_mean"))[0]
    for site in as_mapping(metrics.get("external_validation")):
        auc = point_and_interval(as_mapping(metrics["external_validation"][site]).get("auc"))[0]
        if reference is not None and auc is not None and auc < reference - EXTERNAL_AUC_DROP:
            found.append(f"Less reliable on patients from elsewhere: in data from {site} the AUC fell to {auc:.2f}, "
                         f"against {reference:.2f} at the training site.")
    return found


def _weak_classes(matrix: Any, labels: list[str]) -> list[str]:
    rows = as_list(matrix)
    if len(rows) != len(labels) or not all(isinstance(r, list) and len(r) == len(labels) for r in rows):
        return []
    found = []
    for index, row in enumerate(rows):
        if not all(isinstance(n, (int, float)) for n in row) or not sum(row):
            continue
        total, correct = sum(row), row[index]
        if correct / total < WEAK_CLASS_RECALL:
            confused = max((n, i) for i, n in enumerate(row) if i != index)[1]
            found.append(f"{labels[index]}: recognised in {correct:g} of {total:g} test cases; "
                         f"most often called {labels[confused]} ({row[confused]:g}).")
    return found


def _number(name: str, value: float) -> str:
    if name in COUNT_METRICS:
        return f"{value:.0f}"
    return f"{value:.0%}" if name in PERCENT_METRICS else f"{value:.2f}"
