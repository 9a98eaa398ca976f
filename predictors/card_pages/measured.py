"""How a model decides and what was measured of it through the site: its decision rule with the
figures it gave, its calibration, its robustness to how clinics capture photos, and its
validated domain (card keys "decision", "calibration", "robustness", "domain")."""
from __future__ import annotations

from typing import Any, Mapping

from ..catalogue import CONFIDENT
from ..decision import band_rows, finding_rule_row
from ..formatting import in_sentence, percent
from .figures import share
from .reading import as_list, as_mapping, as_text, humanise, is_number


def domain_rows(domain: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How the site tells an upload outside the validated domain (card key "domain", training/domain.py)."""
    rows = []
    validation = as_mapping(domain.get("validation"))
    if is_number(validation.get("answered")) and is_number(validation.get("photos")):
        rows.append(("Ordinary photos from that source still answered",
                     f"{validation['answered']:.0%} of {int(validation['photos'])} validation photos and their "
                     f"{int(validation.get('captures', 0))} re-captures"))
    if domain.get("score"):
        score = as_text(domain.get("score"))
        rows.append(("How it is measured", score[:1].upper() + score[1:]))
    return rows


def domain_groups(benchmark: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each group of the domain-shift benchmark (bench/domain_shift.py) as the card page's table shows it."""
    rows = []
    for group in as_list(benchmark.get("groups")):
        group = as_mapping(group)
        if not is_number(group.get("images")):
            continue
        part = lambda key: f"{group[key]:.0%}" if is_number(group.get(key)) else "—"  # noqa: E731
        refused = ", ".join(f"{humanise(str(code)).lower()} {value:.0%}"
                            for code, value in as_mapping(group.get("refused_by")).items() if is_number(value))
        wrong = as_mapping(as_mapping(group.get("findings")).get("confidently_wrong")).get("value")
        rows.append({"group": as_text(group.get("title")) or humanise(str(group.get("name", ""))),
                     "images": str(int(group["images"])), "finding": part("finding"),
                     "below": part("below"), "uncertain": part("uncertain"),
                     "refused": part("refused") + (f" ({refused})" if refused else ""),
                     # Where the pictures' findings are known (bench/domain_shift.py's finding_figures).
                     "wrong": f"{wrong:.0%}" if is_number(wrong) else "—"})
    return rows


# Pictures from elsewhere given a confident finding this often are named as not recognised.
MISSED_OUTSIDE = 0.2


def confident(measured: Mapping[str, Any]) -> float:
    """The probability a benchmark counted an answer confident from: the one it recorded, or the
    catalogue's CONFIDENT, which every benchmark measures with."""
    return measured["confident"] if is_number(measured.get("confident")) else CONFIDENT


def domain_note(benchmark: Mapping[str, Any]) -> str:
    if not benchmark.get("groups"):
        return ""
    note = (f"Uploads sent through the site itself (measured {as_text(benchmark.get('measured'))}): its own test "
            "photos and their re-captures, which it should answer, and pictures from elsewhere, which it should "
            f"not. A confident finding is one at {percent(confident(benchmark))} or more, not flagged uncertain.")
    missed = [as_mapping(group) for group in as_list(benchmark.get("groups"))
              if as_mapping(group).get("domain") == "out" and is_number(as_mapping(group).get("finding"))
              and as_mapping(group)["finding"] >= MISSED_OUTSIDE]
    if missed:
        note += " Not recognised as outside: " + "; ".join(
            f"{as_text(group.get('title')).lower()} got a confident finding {group['finding']:.0%} of the time"
            for group in missed) + ", so those answers have no evidence behind them either."
    return note


def calibration_rows(calibration: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How the probabilities were made honest (card key "calibration", training/calibration.py)."""
    rows = []
    if is_number(calibration.get("temperature")):
        rows.append(("Temperature dividing the network's scores", f"{calibration['temperature']:.2f}"))
    if is_number(calibration.get("ece_before")) and is_number(calibration.get("ece_after")):
        rows.append(("Average gap between stated confidence and accuracy (ECE)",
                     f"{calibration['ece_before']:.1%} before, {calibration['ece_after']:.1%} after"))
    if rows and is_number(calibration.get("images")):
        rows.append(("Fitted on", f"{int(calibration['images'])} validation images"))
    return rows


def robustness_rows(robustness: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each re-capture of the test photos (bench/capture_robustness.py) as the card page's table shows it."""
    rows = []
    for row in as_list(robustness.get("rows")):
        row = as_mapping(row)
        if not all(is_number(row.get(key)) for key in ("right", "uncertain", "refused", "confidently_wrong")):
            continue
        reasons = ", ".join(f"{humanise(str(code)).lower()} {part:.0%}"
                            for code, part in as_mapping(row.get("refused_by")).items() if is_number(part))
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
    return template.format(f"{row['strength']:g}" if is_number(row.get("strength")) else "").strip(", ")


def confidently_wrong(robustness: Mapping[str, Any]) -> str:
    """How often its test photos as taken got a confident wrong answer (the capture table's first row)."""
    rows = [as_mapping(r) for r in as_list(robustness.get("rows"))]
    row = next((r for r in rows if r.get("family") == "original"), {})
    if not all(is_number(row.get(k)) for k in ("confidently_wrong", "images")):
        return ""
    return (f"Confidently wrong on {row['confidently_wrong']:.0%} of its {int(row['images'])} test images as taken: a "
            f"wrong answer at {percent(confident(robustness))} or more, not flagged uncertain. A confident answer "
            "can still be wrong.")


def outside_words(benchmark: Mapping[str, Any]) -> str:
    """What happened to the uploads from outside the validated source that the domain benchmark sent
    through the site: how many were refused, and how many answered all the same."""
    parts = []
    for group in (as_mapping(g) for g in as_list(benchmark.get("groups"))):
        if group.get("domain") != "out" or not all(is_number(group.get(k)) for k in ("images", "refused", "finding")):
            continue
        images = int(group["images"])
        answered = round((1 - group["refused"]) * images)
        confident_ones = round(group["finding"] * images)
        parts.append(f"of {in_sentence(as_text(group.get('title')))}, it refused "
                     f"{share(images - answered, images)} and answered {share(answered, images)}, {confident_ones} with a confident finding")
    if not parts:
        return ""
    return ("Not every upload from elsewhere is told: when measured through the site "
            f"({as_text(benchmark.get('measured'))}), " + "; ".join(parts) + ". An answer to such an upload has no "
            "evidence behind it: make sure an upload comes from the source named above.")


def robustness_note(robustness: Mapping[str, Any]) -> str:
    if not robustness.get("rows"):
        return ""
    return (f"The held-out test photos sent again as clinics capture them, through the site itself "
            f"(measured {as_text(robustness.get('measured'))}). Confidently wrong: wrong at "
            f"{percent(confident(robustness))} or more and not flagged uncertain.")


def decision_rows(decision: Mapping[str, Any], referable_grade: int | None) -> list[tuple[str, str]]:
    """The rule an image result is decided by (card key "decision", chosen on validation images by
    training/calibration.py), in the words of the result page (predictors.decision), and what it gave
    on validation and on the test photos nobody tuned it on."""
    rows = []
    low, high = decision.get("not_referable_below"), decision.get("referable_threshold")
    if referable_grade is not None and is_number(low) and is_number(high):
        rows += band_rows(low, high, referable_grade)
        rows += [(f"On {split} photos", text) for split, text in
                 (("validation", _referral_words(decision)), ("test", _referral_words(as_mapping(decision.get("test")))))
                 if text]
    elif is_number(decision.get("uncertain_below")):
        rows.append(finding_rule_row(decision["uncertain_below"]))
        if is_number(decision.get("coverage")) and is_number(decision.get("accuracy_answered")):
            rows.append(("On validation images", f"answers {decision['coverage']:.0%}, and is right about "
                                                 f"{decision['accuracy_answered']:.0%} of those it answers"))
        test = as_mapping(decision.get("test"))
        if all(is_number(test.get(k)) for k in ("images", "answered", "answered_right")):
            rows.append(("On test images", f"answers {share(test['answered'], test['images'])}; right in "
                                           f"{share(test['answered_right'], test['answered'])} of those it answers"))
    return rows


def _referral_words(figures: Mapping[str, Any]) -> str:
    keys = ("referable_eyes", "referable_referred", "referable_uncertain", "referable_missed", "other_eyes",
            "other_referred", "other_uncertain", "other_not_referred")
    if not all(is_number(figures.get(k)) for k in keys):
        return ""
    f = {k: int(figures[k]) for k in keys}
    return (f"of {f['referable_eyes']} eyes with referable retinopathy, referred "
            f"{share(f['referable_referred'], f['referable_eyes'])}, left to a human read {f['referable_uncertain']}, "
            f"missed {f['referable_missed']}; of {f['other_eyes']} other eyes, not referred "
            f"{share(f['other_not_referred'], f['other_eyes'])}, left to a human read {f['other_uncertain']}, "
            f"referred needlessly {f['other_referred']}")
