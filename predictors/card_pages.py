"""A model card in a clinician's words: what it predicts, from what data, how well, where it fails.

Cards are written by training and grow new keys over time, so every read here is
defensive: a missing key, or a value of an unexpected shape, leaves a line out rather
than failing the page. Everything the summary leaves out is one link away as JSON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .formatting import percent

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
PLOT_CAPTIONS = {
    "roc": "ROC curve: true against false positive rate at every threshold.",
    "reliability": ("Reliability: the stated probability against how often it proved right (for an image model, "
                    "its most likely answer, before and after calibration); the diagonal is perfect."),
    "confusion": "Confusion matrix on the held-out test set: rows are the true class, columns the prediction.",
}
WEAK_CLASS_RECALL = 0.6  # a class recognised less often than this is named under "where it fails"
EXTERNAL_AUC_DROP = 0.05  # an external site this far below cross-validation is named too


@dataclass
class MetricSection:
    title: str
    note: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)
    technical: bool = False  # figures on the images thresholds were tuned on: developer detail


@dataclass
class CardSummary:
    task: str
    outputs: list[str]
    intended_use: str
    version: str
    created: str
    data: list[tuple[str, str]]  # on whom: what a clinician weighs the figures by
    data_details: list[tuple[str, str]]  # how the data were read and split: developer detail
    sections: list[MetricSection]
    sites: list[dict[str, str]]
    limitations: list[str]
    attribution: list[str]
    plots: list[tuple[str, str]]
    decision: list[tuple[str, str]] = field(default_factory=list)
    calibration: list[tuple[str, str]] = field(default_factory=list)
    robustness: list[dict[str, str]] = field(default_factory=list)
    robustness_note: str = ""
    robustness_right: str = "Right"
    validated_on: str = ""
    domain: list[tuple[str, str]] = field(default_factory=list)
    domain_groups: list[dict[str, str]] = field(default_factory=list)
    domain_note: str = ""


def summarise(card: Mapping[str, Any], known_limitations: list[str] | None = None) -> CardSummary:
    """The card in a clinician's words; `known_limitations` are the catalogue's own (who the data were),
    listed first under "where it fails"."""
    metrics = _mapping(card.get("metrics"))
    labels = [str(label) for label in _list(card.get("labels"))]
    return CardSummary(
        task=_text(card.get("task")),
        outputs=labels,
        intended_use=_text(card.get("intended_use")),
        version=_text(card.get("version")),
        created=_text(card.get("created"))[:10],
        data=[row for key, row in _data_rows(_mapping(card.get("data"))) if key not in DEVELOPER_DATA],
        data_details=[row for key, row in _data_rows(_mapping(card.get("data"))) if key in DEVELOPER_DATA],
        sections=_metric_sections(metrics),
        sites=_sites(_mapping(metrics.get("external_validation"))),
        limitations=[*(known_limitations or []), *_texts(card.get("limitations")),
                     *_derived_limitations(card, metrics, labels)],
        attribution=_texts(card.get("attribution")),
        plots=[(str(key), PLOT_CAPTIONS.get(str(key), _humanise(str(key)) + "."))
               for key in _mapping(card.get("plots"))],
        decision=_decision_rows(_mapping(card.get("decision"))),
        calibration=_calibration_rows(_mapping(card.get("calibration"))),
        robustness=_robustness_rows(_mapping(card.get("robustness"))),
        robustness_note=_robustness_note(_mapping(card.get("robustness"))),
        # bench/capture_robustness.py judges a graded model by its referral call, not its grade
        robustness_right=("Referral call right" if "referable_threshold" in _mapping(card.get("decision"))
                          else "Finding right"),
        validated_on=_text(_mapping(card.get("domain")).get("validated_on")),
        domain=_domain_rows(_mapping(card.get("domain"))),
        domain_groups=_domain_groups(_mapping(_mapping(card.get("domain")).get("benchmark"))),
        domain_note=_domain_note(_mapping(_mapping(card.get("domain")).get("benchmark"))),
    )


def _domain_rows(domain: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How the site tells an upload outside the validated domain (card key "domain", training/domain.py)."""
    rows = []
    validation = _mapping(domain.get("validation"))
    if _is_number(validation.get("answered")) and _is_number(validation.get("photos")):
        rows.append(("Ordinary photos from that source still answered",
                     f"{validation['answered']:.0%} of {int(validation['photos'])} validation photos and their "
                     f"{int(validation.get('captures', 0))} re-captures"))
    if domain.get("score"):
        score = _text(domain.get("score"))
        rows.append(("How it is measured", score[:1].upper() + score[1:]))
    return rows


def _domain_groups(benchmark: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each group of the domain-shift benchmark (bench/domain_shift.py) as the card page's table shows it."""
    rows = []
    for group in _list(benchmark.get("groups")):
        group = _mapping(group)
        if not _is_number(group.get("images")):
            continue
        share = lambda key: f"{group[key]:.0%}" if _is_number(group.get(key)) else "—"  # noqa: E731
        refused = ", ".join(f"{_humanise(str(code)).lower()} {value:.0%}"
                            for code, value in _mapping(group.get("refused_by")).items() if _is_number(value))
        rows.append({"group": _text(group.get("title")) or _humanise(str(group.get("name", ""))),
                     "images": str(int(group["images"])), "finding": share("finding"),
                     "below": share("below"), "uncertain": share("uncertain"),
                     "refused": share("refused") + (f" ({refused})" if refused else "")})
    return rows


# Pictures from elsewhere given a confident finding this often are named as not recognised.
MISSED_OUTSIDE = 0.2


def _domain_note(benchmark: Mapping[str, Any]) -> str:
    if not benchmark.get("groups"):
        return ""
    note = (f"Uploads sent through the site itself (measured {_text(benchmark.get('measured'))}): its own test "
            "photos and their re-captures, which it should answer, and pictures from elsewhere, which it should "
            "not. A confident finding is one at 80% or more, not flagged uncertain.")
    missed = [_mapping(group) for group in _list(benchmark.get("groups"))
              if _mapping(group).get("domain") == "out" and _is_number(_mapping(group).get("finding"))
              and _mapping(group)["finding"] >= MISSED_OUTSIDE]
    if missed:
        note += " Not recognised as outside: " + "; ".join(
            f"{_text(group.get('title')).lower()} got a confident finding {group['finding']:.0%} of the time"
            for group in missed) + ", so those answers have no evidence behind them either."
    return note


def _calibration_rows(calibration: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How the probabilities were made honest (card key "calibration", training/calibration.py)."""
    rows = []
    if _is_number(calibration.get("temperature")):
        rows.append(("Temperature dividing the network's scores", f"{calibration['temperature']:.2f}"))
    if _is_number(calibration.get("ece_before")) and _is_number(calibration.get("ece_after")):
        rows.append(("Average gap between stated confidence and accuracy (ECE)",
                     f"{calibration['ece_before']:.1%} before, {calibration['ece_after']:.1%} after"))
    if rows and _is_number(calibration.get("images")):
        rows.append(("Fitted on", f"{int(calibration['images'])} validation images"))
    return rows


def _robustness_rows(robustness: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each re-capture of the test photos (bench/capture_robustness.py) as the card page's table shows it."""
    rows = []
    for row in _list(robustness.get("rows")):
        row = _mapping(row)
        if not all(_is_number(row.get(key)) for key in ("right", "uncertain", "refused", "confidently_wrong")):
            continue
        reasons = ", ".join(f"{_humanise(str(code)).lower()} {share:.0%}"
                            for code, share in _mapping(row.get("refused_by")).items() if _is_number(share))
        rows.append({"capture": _capture_words(row), "right": f"{row['right']:.0%}",
                     "uncertain": f"{row['uncertain']:.0%}",
                     "refused": f"{row['refused']:.0%}" + (f" ({reasons})" if reasons else ""),
                     "confidently_wrong": f"{row['confidently_wrong']:.0%}"})
    return rows


CAPTURE_WORDS = {
    "original": "as taken", "brightness": "brightness ×{}", "contrast": "contrast ×{}", "gamma": "gamma {}",
    "colour_cast": "colour cast {}", "uneven_light": "shadow across it, {}", "tilt": "tilted {}°",
    "rotate": "turned {}°", "phone_photo": "phone photo at an angle, {}", "blur": "blurred, σ {} px",
    "recompress": "messaging app (1000 px, JPEG quality {})", "screen_photo": "photo of a screen, {}",
}


def _capture_words(row: Mapping[str, Any]) -> str:
    template = CAPTURE_WORDS.get(str(row.get("family")), str(row.get("capture")) + " {}")
    return template.format(f"{row['strength']:g}" if _is_number(row.get("strength")) else "").strip(", ")


def _robustness_note(robustness: Mapping[str, Any]) -> str:
    if not robustness.get("rows"):
        return ""
    confident = robustness.get("confident", 0.8)
    return (f"The held-out test photos sent again as clinics capture them, through the site itself "
            f"(measured {_text(robustness.get('measured'))}). Confidently wrong: wrong at "
            f"{confident:.0%} or more and not flagged uncertain.")


# Fewer cases than this behind a share: "too few to estimate" instead of a percentage or an interval.
TOO_FEW = 10


def share(count: int, total: int) -> str:
    """A share as a card states it: the counts always, the percentage only when enough cases stand behind it."""
    if total < TOO_FEW:
        return f"{count} of {total} (too few to estimate a share)"
    return f"{count} of {total} ({count / total:.0%})"


def _decision_rows(decision: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The rule an image result is decided by (card key "decision", chosen on validation images by
    training/calibration.py), in the words of the result page, and what it gave on validation and
    on the test photos nobody tuned it on."""
    rows = []
    low, high = decision.get("not_referable_below"), decision.get("referable_threshold")
    if _is_number(low) and _is_number(high):
        rows += [("Referable when the probability of grade 2 or worse reaches", percent(high)),
                 ("Not referable when it is under", percent(low))]
        if low < high:
            rows.append(("Between the two", "Uncertain: needs a human read"))
        rows += [(f"On {split} photos", text) for split, text in
                 (("validation", _referral_words(decision)), ("test", _referral_words(_mapping(decision.get("test")))))
                 if text]
    elif _is_number(decision.get("uncertain_below")):
        rows.append(("\u201cUncertain: needs a human read\u201d when its most likely answer is under",
                     percent(decision["uncertain_below"])))
        if _is_number(decision.get("coverage")) and _is_number(decision.get("accuracy_answered")):
            rows.append(("On validation images", f"answers {decision['coverage']:.0%}, and is right about "
                                                 f"{decision['accuracy_answered']:.0%} of those it answers"))
        test = _mapping(decision.get("test"))
        if all(_is_number(test.get(k)) for k in ("images", "answered", "answered_right")):
            rows.append(("On test images", f"answers {share(test['answered'], test['images'])}; right in "
                                           f"{share(test['answered_right'], test['answered'])} of those it answers"))
    return rows


def _referral_words(figures: Mapping[str, Any]) -> str:
    keys = ("referable_eyes", "referable_referred", "referable_uncertain", "referable_missed", "other_eyes",
            "other_referred", "other_uncertain", "other_not_referred")
    if not all(_is_number(figures.get(k)) for k in keys):
        return ""
    f = {k: int(figures[k]) for k in keys}
    return (f"of {f['referable_eyes']} eyes with referable retinopathy, referred "
            f"{share(f['referable_referred'], f['referable_eyes'])}, left to a human read {f['referable_uncertain']}, "
            f"missed {f['referable_missed']}; of {f['other_eyes']} other eyes, not referred "
            f"{share(f['other_not_referred'], f['other_eyes'])}, left to a human read {f['other_uncertain']}, "
            f"referred needlessly {f['other_referred']}")


def format_metric(name: str, value: Any) -> str | None:
    """A metric as text, with its confidence interval when the card gives one; None if unreadable."""
    point, interval = _point_and_interval(value)
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


def _metric_sections(metrics: Mapping[str, Any]) -> list[MetricSection]:
    sections = []
    top_level = MetricSection(SECTION_TITLES["test"], _text(metrics.get("split")))
    for key in _sections_in_order(metrics):
        value = metrics[key]
        if isinstance(value, Mapping) and _point_and_interval(value)[0] is None:
            section = MetricSection(SECTION_TITLES.get(key, _humanise(key)), _text(value.get("split")),
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
        if isinstance(value, Mapping) and _point_and_interval(value)[0] is None:
            prefix = ", ".join(filter(None, [METRIC_NAMES.get(key, _humanise(key)), _text(value.get("definition"))]))
            # A metric's name reads on in lower case ("…: sensitivity"); a class name keeps its own.
            counts = _mapping(metrics.get("support")) if key == "recall" else {}
            rows += [(f"{prefix}: {_lower_metric(name)}", text)
                     for name, text in _metric_rows(value, parent=key, counts=counts)]
            continue
        if _is_number(counts.get(key)):  # a class's recall: out of its own images
            text = _recall_text(value, int(counts[key]))
        else:
            text = format_metric(key if parent is None or key in METRIC_NAMES else parent, value)
        if text is None:
            continue
        spread = metrics.get(key.replace("_mean", "_std")) if key.endswith("_mean") else None
        if isinstance(spread, (int, float)) and not isinstance(spread, bool):
            text += f" ± {_number(key, spread)} across folds"
        rows.append((METRIC_NAMES.get(key, _humanise(key)), text))
    return rows


def _recall_text(value: Any, images: int) -> str | None:
    """A class's recall as counts out of its images; its interval only where enough images stand behind
    it to estimate one (TOO_FEW) and the bootstrap gave one of some width."""
    point, interval = _point_and_interval(value)
    if point is None or not math.isfinite(point):  # a class without test images has no recall
        return None
    text = share(round(point * images), images)
    if interval and images >= TOO_FEW and interval[0] < interval[1]:
        text += f", 95% CI {interval[0]:.0%} to {interval[1]:.0%}"
    return text


def _lower_metric(name: str) -> str:
    return name[:1].lower() + name[1:] if name in METRIC_NAMES.values() else name


def _sites(external: Mapping[str, Any]) -> list[dict[str, str]]:
    sites = []
    for site, figures in external.items():
        figures = _mapping(figures)
        sites.append({"site": str(site), "rows": _text(figures.get("rows")),
                      "positives": _text(figures.get("positives")),
                      "auc": format_metric("auc", figures.get("auc")) or "",
                      "brier": format_metric("brier", figures.get("brier")) or ""})
    return sites


def _data_rows(data: Mapping[str, Any]) -> list[tuple[str, tuple[str, str]]]:
    """The data section's rows, each with its card key."""
    rows = []
    for key, value in data.items():
        if key == "synthetic":
            if value is True:
                rows.append((key, ("Real patients", "None: every image was generated by the project")))
            continue
        if isinstance(value, Mapping):
            continue  # per-site or per-class breakdowns: shown with the performance, or in the JSON
        if isinstance(value, list):
            if not all(isinstance(v, (str, int, float)) for v in value):
                continue
            value = ", ".join(str(v) for v in value)
        rows.append((key, (DATA_NAMES.get(key, _humanise(key)), _text(value))))
    return [(key, row) for key, row in rows if row[1]]


def _derived_limitations(card: Mapping[str, Any], metrics: Mapping[str, Any], labels: list[str]) -> list[str]:
    found = []
    if _mapping(card.get("data")).get("synthetic") is True:
        found.append("Trained and tested only on synthetic images the project generates: how it performs on "
                     "real patients' images is unknown.")
    for section in (*(metrics[k] for k in _sections_in_order(metrics)), metrics):
        matrix = _mapping(section).get("confusion_matrix")
        if matrix is not None:
            found += _weak_classes(matrix, labels)
            break
    reference = _point_and_interval(_mapping(metrics.get("cross_validation")).get("auc_mean"))[0]
    for site in _mapping(metrics.get("external_validation")):
        auc = _point_and_interval(_mapping(metrics["external_validation"][site]).get("auc"))[0]
        if reference is not None and auc is not None and auc < reference - EXTERNAL_AUC_DROP:
            found.append(f"Less reliable on patients from elsewhere: in data from {site} the AUC fell to {auc:.2f}, "
                         f"against {reference:.2f} at the training site.")
    return found


def _weak_classes(matrix: Any, labels: list[str]) -> list[str]:
    rows = _list(matrix)
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


def _point_and_interval(value: Any) -> tuple[float | None, tuple[float, float] | None]:
    """A metric's value and 95% interval from a number or from the dict shapes cards use."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, (int, float)):
        return float(value), None
    if not isinstance(value, Mapping):
        return None, None
    point = next((value[k] for k in ("value", "estimate", "point", "mean") if _is_number(value.get(k))), None)
    if point is None:
        return None, None
    interval = None
    for key in ("ci95", "ci_95", "ci", "confidence_interval", "interval"):
        bounds = value.get(key)
        if isinstance(bounds, Mapping):
            bounds = [bounds.get("low", bounds.get("lower")), bounds.get("high", bounds.get("upper"))]
        if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(_is_number(b) for b in bounds):
            interval = (float(bounds[0]), float(bounds[1]))
            break
    if interval is None:
        low = next((value[k] for k in ("ci_low", "lower", "low") if _is_number(value.get(k))), None)
        high = next((value[k] for k in ("ci_high", "upper", "high") if _is_number(value.get(k))), None)
        if low is not None and high is not None:
            interval = (float(low), float(high))
    return float(point), interval


def _number(name: str, value: float) -> str:
    if name in COUNT_METRICS:
        return f"{value:.0f}"
    return f"{value:.0%}" if name in PERCENT_METRICS else f"{value:.2f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if value is None or isinstance(value, (Mapping, list)):
        return ""
    return str(value)


def _texts(value: Any) -> list[str]:
    """Free text a card gives as a string, a list of strings, or a list or dict of entries."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        value = [f"{_humanise(str(k))}: {v}" if isinstance(v, str) else v for k, v in value.items()]
    texts = []
    for item in _list(value):
        if isinstance(item, Mapping):
            item = next((item[k] for k in ("text", "description", "summary", "name") if isinstance(item.get(k), str)),
                        "; ".join(f"{k}: {v}" for k, v in item.items() if isinstance(v, (str, int, float))))
        if isinstance(item, str) and item.strip():
            texts.append(item)
    return texts


def _humanise(key: str) -> str:
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
