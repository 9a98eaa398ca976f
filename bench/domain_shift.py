"""What the image models answer inside and outside the conditions they were validated on.

    .venv-dev/bin/python -m bench.domain_shift [--per-format N] [--capture-photos N] [--limit N] [--write]

Through the API of the real server (gunicorn_config.py, the runtime environment, the
shipped artifacts) it sends two kinds of pictures and counts what comes back:

- inside the validated domain, which must still be answered: each image model's held-out
  test photos as taken (the files its card lists), and `--capture-photos` of them spread
  over the split, each re-captured once by every family of captures.BENCHMARK, the
  family's strengths taken in turn from photo to photo;
- outside it, which should get no finding: `--drawn` real PTB-XL recordings of fold-8
  patients (printouts.test_patients) printed by other_formats in each of its printout
  formats (other machines' layouts), as exported and photographed with a phone, their
  findings known; the other machines' printouts in ../shared/samples/ecg/ (read in place);
  `--per-format` screenshots of an ECG viewer (records from synth_ecg.simulate); and
  `--per-format` test photos remade in each of other_formats.FUNDUS_LOOKS.

Per group it reports the shares answered with a confident finding (confidence at least
predictors.catalogue.CONFIDENT and not flagged uncertain), answered below it, flagged
uncertain, refused (by the 422 code the API gives) and answered with any other status. Every
retina picture re-makes a graded IDRiD photo (as taken, re-captured, or as another camera), so
its grade is known: per retina group it also reports what the referral calls were worth,
referable sensitivity and specificity of the photos answered with a call (not refused, not
uncertain), with 95% intervals, beside the share answered. Every ECG picture but the other
machines' samples and the viewer screenshots has a known finding: per such group it reports the
share answered, right of those answered and confidently wrong of all (finding_outcome). `--limit N` sends at most N
pictures per group, spread over it: a quick look, not the benchmark. The
generators need the training environment (neurokit2, matplotlib), hence .venv-dev. --write
records the table in docs/benchmarks.md, the per-group figures in var/domain_shift.json, and
each image model's groups on its card (published again through Card.publish).
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from bench.harness import ARTIFACTS, ROOT, SAMPLES, Site
from bench.report import command_line, header, model_versions, parser, publish
from predictors.catalogue import CONFIDENT, SPECS
from predictors.decision import NOT_REFERABLE, REFERABLE, UNCERTAIN
from predictors.serving.artifacts import Card
from predictors.training import captures, other_formats, printouts, real_images, synth_ecg
from predictors.training.evaluation import proportion_interval

CLIENTS = 2  # one picture made here while the server reads the other
KIND = {"retina": "fundus", "ecg": "ecg"}
JSON_PATH = ROOT / "var" / "domain_shift.json"
SECTION = "domain-shift"
OUTCOMES = ("confident", "below", "uncertain")
# What a graded answer's referral counts are kept as, per side of the truth.
NO_CALL = "no call"  # refused, or any status but 200
T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    """One picture to send: which model, under what file name, made when it is sent."""

    model: str
    name: str
    make: Callable[[], bytes]
    grade: int | None = None  # the grade of the real photo it re-makes, where known
    # An ECG picture's finding where known (a Khan class, or a PTB-XL recording's findings.csv value).
    finding: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    model: str
    domain: str  # "in": must be answered; "out": should get no finding
    uploads: list[Upload]


def outcome(status: int, body: dict[str, Any]) -> str:
    """One answer as "confident", "below", "uncertain", "refused:<code>" or "status:<n>"."""
    if status == 200:
        if body.get("uncertain"):
            return "uncertain"
        return "confident" if body["confidence"] >= CONFIDENT else "below"
    if status == 422:
        return f"refused:{body.get('error', {}).get('code', 'unknown')}"
    return f"status:{status}"


def referral(status: int, body: dict[str, Any]) -> str:
    """A graded answer's referral call (decision.REFERABLE, NOT_REFERABLE or UNCERTAIN), or NO_CALL."""
    if status != 200 or "referable_dr" not in body:
        return NO_CALL
    if body.get("uncertain"):
        return UNCERTAIN
    return REFERABLE if body["referable_dr"] else NOT_REFERABLE


def finding_outcome(status: int, body: dict[str, Any], finding: str) -> str:
    """An ECG answer against the picture's known finding: "right" or "wrong" (and "confidently wrong" at
    CONFIDENT or more; a Normal answer at CONFIDENT or more to an abnormal ECG of none of the four findings is
    "other called normal"), "uncertain", or "refused" (any status but 200)."""
    if status != 200:
        return "refused"
    if body.get("uncertain"):
        return "uncertain"
    if body["label"] in printouts.RIGHT_ANSWERS.get(finding, (finding,)):
        return "right"
    if body["confidence"] < CONFIDENT:
        return "wrong"
    return "other called normal" if finding == "other" and body["label"] == "Normal" else "confidently wrong"


def _share(count: int, total: int) -> dict[str, Any] | None:
    """count of total with its 95% Wilson interval, or None of nothing."""
    return None if total == 0 else {"value": round(count / total, 4), "ci95": proportion_interval(count, total)}


FINDING_OUTCOMES = ("right", "wrong", "confidently wrong", "other called normal", "uncertain", "refused")


def finding_figures(outcomes: Counter[str]) -> dict[str, Any]:
    """Of a group's ECG pictures: the share answered (neither refused nor uncertain), right of those answered,
    and confidently wrong of all, with 95% Wilson intervals; "other called normal" counts as confidently wrong."""
    pictures = sum(outcomes.values())
    answered = sum(outcomes[key] for key in ("right", "wrong", "confidently wrong", "other called normal"))
    confidently_wrong = outcomes["confidently wrong"] + outcomes["other called normal"]

    return {"counts": {key: outcomes[key] for key in FINDING_OUTCOMES}, "pictures": pictures,
            "answered": _share(answered, pictures), "right_of_answered": _share(outcomes["right"], answered),
            "confidently_wrong": _share(confidently_wrong, pictures)}


def referral_counts(calls: list[tuple[int, str]], referable_grade: int) -> dict[str, int]:
    """(known grade, call) pairs counted by the truth's side and the call: what sensitivity,
    specificity and the share answered come from, and what a family's total adds up."""
    counts = {f"{side}_{call}": 0 for side in ("referable", "other")
              for call in (REFERABLE, NOT_REFERABLE, UNCERTAIN, NO_CALL)}
    for grade, call in calls:
        counts[f"{'referable' if grade >= referable_grade else 'other'}_{call}"] += 1
    return counts


def referral_figures(counts: dict[str, int]) -> dict[str, Any]:
    """Of the photos answered with a referral call: referable sensitivity and specificity against
    the known grades (95% Wilson intervals); and the share of all the group's photos so answered."""
    referable_answered = counts[f"referable_{REFERABLE}"] + counts[f"referable_{NOT_REFERABLE}"]
    other_answered = counts[f"other_{REFERABLE}"] + counts[f"other_{NOT_REFERABLE}"]
    photos = sum(counts.values())

    return {"counts": counts, "photos": photos,
            "answered": round((referable_answered + other_answered) / photos, 4) if photos else None,
            "sensitivity": _share(counts[f"referable_{REFERABLE}"], referable_answered),
            "specificity": _share(counts[f"other_{NOT_REFERABLE}"], other_answered)}


def _spread(items: list[T], count: int) -> list[T]:
    """`count` items evenly spread over the list (the test splits are ordered by class)."""
    if count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, count - 1))] for i in range(count)]


def _grade(model: str, relative: str) -> int | None:
    """The known grade of a graded model's photo (its labels.csv row), None for any other model."""
    return _grades(model)[relative] if SPECS[model].referable_grade is not None else None


@functools.cache
def _grades(model: str) -> dict[str, int]:
    """Each labelled photo's label index (a grade, or an ECG class), by its path under the data root."""
    return {str(item.path.relative_to(real_images.data_root())): item.label
            for item in real_images.labelled_images(KIND[model])}


def _finding(model: str, relative: str) -> str | None:
    """The known finding of an ECG photo (its class folder), None for any other model."""
    return SPECS[model].labels[_grades(model)[relative]] if model == "ecg" else None


def _test_files(model: str) -> list[str]:
    card = json.loads((ARTIFACTS / model / "card.json").read_text())
    return card["data"]["test_files"]


def _photo(relative: str) -> Image.Image:
    with Image.open(real_images.data_root() / relative) as image:
        return image.convert("RGB")


def in_domain_groups(capture_photos: int) -> list[Group]:
    """Each model's test photos as taken, and a spread of them through every capture family."""
    groups = []
    for model in ("ecg", "retina"):
        files = _test_files(model)
        groups.append(Group(f"{model} test photos", model, "in", [
            Upload(model, Path(file).name, lambda file=file: (real_images.data_root() / file).read_bytes(),
                   _grade(model, file), _finding(model, file)) for file in files]))
        chosen = _spread(files, capture_photos)
        families: dict[str, list[captures.Capture]] = {}
        for condition in captures.BENCHMARK:
            if KIND[model] in condition.kinds:
                families.setdefault(condition.family, []).append(condition)
        for family, conditions in families.items():
            uploads = [Upload(model, f"{Path(file).stem}.jpg",
                              lambda file=file, n=n, c=conditions[n % len(conditions)]:
                              captures.recapture(_photo(file), c, seed=n), _grade(model, file),
                              _finding(model, file))
                       for n, file in enumerate(chosen)]
            strengths = ", ".join(f"{c.strength:g}" for c in conditions)
            groups.append(Group(f"{model} capture: {family} ({strengths})", model, "in", uploads))
    return groups


# The one rendered ECG format that is not a printout: a viewer's window on a screen.
NOT_PRINTOUTS = ("viewer screenshot",)


def drawn_elsewhere_groups(per_format: int) -> list[Group]:
    """PTB-XL recordings of the drawn test patients (printouts.test_patients: never fitted, calibrated or
    tuned on), printed by other_formats in each printout format (other machines' layouts, outside what the
    ECG model was validated on), as exported, and the same pages photographed with a phone
    (captures.BENCHMARK's phone_photo strengths in turn), their findings known: what the model answers them,
    and whether rightly."""
    found = printouts.recordings()
    tested = printouts.test_patients(found)
    chosen = _spread(sorted((r for r in found if r.patient_id in tested), key=lambda r: (r.finding, r.ecg_id)),
                     per_format)
    photo = [c for c in captures.BENCHMARK if c.family == "phone_photo"]
    formats = [name for name in other_formats.ECG_FORMATS if name not in NOT_PRINTOUTS]

    def make(recording: printouts.Recording, n: int, name: str, photographed: bool) -> bytes:
        page = other_formats.render_ecg(name, other_formats.recorded(printouts.read_signals(recording)),
                                        recording.ecg_id)
        if not photographed:
            return page
        return captures.recapture(Image.open(io.BytesIO(page)).convert("RGB"), photo[n % len(photo)], seed=n)

    groups = []
    for photographed in (False, True):
        for name in formats:
            label = "PTB-XL drawn elsewhere, phone photo" if photographed else "PTB-XL drawn elsewhere"
            groups.append(Group(f"{label}: {name}", "ecg", "out", [
                Upload("ecg", f"{recording.ecg_id}_{name.replace(' ', '_')}.{'jpg' if photographed else 'png'}",
                       functools.partial(make, recording, n, name, photographed), finding=recording.finding)
                for n, recording in enumerate(chosen)]))
    return groups


def out_of_domain_groups(per_format: int) -> list[Group]:
    """Other machines' printouts, an ECG viewer's screenshots and the other-camera fundus photos."""
    printouts_found = sorted(p for p in (SAMPLES / "ecg").iterdir() if p.is_file())
    groups = [Group("other machines' printouts (samples/ecg)", "ecg", "out",
                    [Upload("ecg", path.name, path.read_bytes) for path in printouts_found])]
    started = time.perf_counter()
    records = [synth_ecg.simulate(n % len(SPECS["ecg"].labels), seed=n) for n in range(per_format)]
    print(f"simulated {len(records)} ECG records in {time.perf_counter() - started:.0f} s", flush=True)
    for name in NOT_PRINTOUTS:
        groups.append(Group(f"rendered ECG: {name}", "ecg", "out", [
            Upload("ecg", f"{name.replace(' ', '_')}_{n}.png",
                   lambda name=name, record=record, n=n: other_formats.render_ecg(name, record, n))
            for n, record in enumerate(records)]))
    photos = _spread(_test_files("retina"), per_format)
    for name in other_formats.FUNDUS_LOOKS:
        groups.append(Group(f"other camera: {name}", "retina", "out", [
            Upload("retina", f"{Path(file).stem}.jpg",
                   lambda name=name, file=file, n=n: other_formats.render_fundus(name, _photo(file), n),
                   _grade("retina", file)) for n, file in enumerate(photos)]))
    return groups


def _row(group: Group, outcomes: Counter[str], referrals: dict[str, int] | None = None,
         findings: Counter[str] | None = None) -> dict[str, Any]:
    images = sum(outcomes.values())
    refused = {key.split(":", 1)[1]: n for key, n in sorted(outcomes.items()) if key.startswith("refused:")}
    other = {key.split(":", 1)[1]: n for key, n in sorted(outcomes.items()) if key.startswith("status:")}
    counts = {**{key: outcomes[key] for key in OUTCOMES}, "refused": sum(refused.values()),
              "other_status": sum(other.values())}
    return {
        "group": group.name, "model": group.model, "domain": group.domain, "images": images, "counts": counts,
        "shares": {key: round(n / images, 3) for key, n in counts.items()},
        "refused_by": refused, "other_status_by": other,
        **({"referral": referral_figures(referrals)} if referrals is not None else {}),
        **({"findings": finding_figures(findings)} if findings is not None else {}),
    }


def _total(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows added up, as if one group."""
    outcomes: Counter[str] = Counter()
    referrals: Counter[str] | None = Counter() if all("referral" in row for row in rows) else None
    findings: Counter[str] | None = Counter() if all("findings" in row for row in rows) else None
    for row in rows:
        if findings is not None:
            findings.update(row["findings"]["counts"])
        outcomes.update({key: row["counts"][key] for key in OUTCOMES})
        outcomes.update({f"refused:{code}": n for code, n in row["refused_by"].items()})
        outcomes.update({f"status:{code}": n for code, n in row["other_status_by"].items()})
        if referrals is not None:
            referrals.update(row["referral"]["counts"])
    return _row(Group(name, rows[0]["model"], rows[0]["domain"], []), outcomes,
                None if referrals is None else dict(referrals), findings)


def run(groups: list[Group]) -> list[dict[str, Any]]:
    site = Site().start()
    rows = []
    try:
        for group in groups:
            started = time.perf_counter()

            def send(upload: Upload) -> tuple[str, str, str | None]:
                status, body, _ = site.predict(upload.model, (upload.name, upload.make()))
                return (outcome(status, body), referral(status, body),
                        None if upload.finding is None else finding_outcome(status, body, upload.finding))

            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(pool.map(send, group.uploads))
            grade = SPECS[group.model].referable_grade
            graded = grade is not None and all(upload.grade is not None for upload in group.uploads)
            known = all(upload.finding is not None for upload in group.uploads)
            row = _row(group, Counter(found for found, _, _ in answers), referral_counts(
                [(upload.grade, call) for upload, (_, call, _) in zip(group.uploads, answers, strict=True)], grade)
                if graded else None, Counter(judged for _, _, judged in answers) if known else None)
            rows.append(row)
            print(f"{_line(row)}  ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        site.stop()
    return rows


def with_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups, each family of groups followed by its total where it has more than one."""
    out: list[dict[str, Any]] = []
    families: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        family = row["group"].split(":", 1)[0] if ":" in row["group"] else row["group"]
        families.setdefault(family, []).append(row)
    for family, members in families.items():
        out += members
        if len(members) > 1:
            out.append({**_total(f"{family}: all", members), "total": True})
    return out


def _cell(row: dict[str, Any], key: str) -> str:
    return f"{row['shares'][key]:.2f} ({row['counts'][key]})"


def _line(row: dict[str, Any]) -> str:
    refused = ", ".join(f"{code} {n}" for code, n in row["refused_by"].items())
    return (f"{row['group']:<52} n={row['images']:<3} confident {_cell(row, 'confident')}  "
            f"below {_cell(row, 'below')}  uncertain {_cell(row, 'uncertain')}  refused {_cell(row, 'refused')}"
            f"{f' [{refused}]' if refused else ''}  other {_cell(row, 'other_status')}"
            + (f"  answered with a call {row['referral']['answered']:.2f}  sensitivity "
               f"{_measured(row['referral']['sensitivity'])}  specificity {_measured(row['referral']['specificity'])}"
               if "referral" in row else "")
            + (f"  answered {_measured(row['findings']['answered'])}  right {_measured(row['findings']['right_of_answered'])}"
               f"  confidently wrong {_measured(row['findings']['confidently_wrong'])}" if "findings" in row else ""))


def _measured(figure: dict[str, Any] | None) -> str:
    """A share with its interval, or a dash where the group had no photo on that side answered."""
    if figure is None:
        return "–"
    low, high = figure["ci95"]
    return f"{figure['value']:.2f} ({low:.2f}–{high:.2f})"


def render(rows: list[dict[str, Any]], command: str, per_format: int, capture_photos: int, drawn: int) -> str:
    lines = [header(command, model_versions(KIND)) + ", through the API of a real server. Each cell is a share "
             f"of the group's pictures (and their count). A confident finding is an answer at {CONFIDENT:.0%} or "
             "more not "
             "flagged uncertain; refusals are the API's 422 codes. Inside the domain: the models' held-out test "
             f"photos, and {capture_photos} of them per model each re-captured once by every capture family "
             "(predictors/training/captures.py; the strengths in brackets taken in turn). Outside it: the other "
             f"machines' printouts in ../shared/samples/ecg/, {per_format} screenshots of an ECG viewer and "
             f"{per_format} test photos per other-camera look (predictors/training/other_formats.py), and "
             f"PTB-XL drawn elsewhere: {drawn} real recordings of PTB-XL fold-8 patients (printouts.test_patients) "
             "printed by predictors/training/other_formats.py in each of its printout formats (other machines' "
             "layouts), as exported and as phone photos, their findings known.", ""]
    for domain, title in (("in", "Inside the validated domain (must be answered)"),
                          ("out", "Outside it (should get no finding)")):
        lines += [f"{title}:", "", f"| group | pictures | confident finding | answered < {CONFIDENT:.0%} | "
                  "uncertain | refused (reason) | other status |", "|---|---|---|---|---|---|---|"]
        for row in (r for r in rows if r["domain"] == domain):
            reasons = ", ".join(f"{code} {n}" for code, n in row["refused_by"].items())
            name = f"**{row['group']}**" if row.get("total") else row["group"]
            lines.append(f"| {name} | {row['images']} | {_cell(row, 'confident')} | {_cell(row, 'below')} | "
                         f"{_cell(row, 'uncertain')} | {_cell(row, 'refused')}{f': {reasons}' if reasons else ''} | "
                         f"{_cell(row, 'other_status')} |")
        lines.append("")
    judged = [row for row in rows if "findings" in row]
    if judged:
        lines += ["ECG findings against the pictures' known findings (the Khan test photos' classes; the PTB-XL "
                  "recordings' findings.csv, where an infarction of unknown age is right as either MI finding and "
                  "an abnormal ECG of none of the four has no right answer among them): the share answered "
                  "(neither refused nor uncertain), right of those answered, and confidently wrong (a wrong answer "
                  f"at {CONFIDENT:.0%} or more) of all the group's pictures, with 95% Wilson intervals; the last "
                  "column counts the abnormal ECGs of none of the four answered Normal at that confidence.", "",
                  "| group | pictures | answered | right of answered | confidently wrong | other called Normal |",
                  "|---|---|---|---|---|---|"]
        for row in judged:
            figures = row["findings"]
            name = f"**{row['group']}**" if row.get("total") else row["group"]
            lines.append(f"| {name} | {figures['pictures']} | {_measured(figures['answered'])} | "
                         f"{_measured(figures['right_of_answered'])} | {_measured(figures['confidently_wrong'])} | "
                         f"{figures['counts']['other called normal']} |")
        lines.append("")
    graded = [row for row in rows if "referral" in row]
    if graded:
        lines += ["Retina referral calls against the photos' known IDRiD grades (each picture re-makes a graded "
                  "photo): of the photos answered with a call (neither refused nor uncertain), referable "
                  "sensitivity and specificity with 95% Wilson intervals, and referable eyes called not referable.",
                  "", "| group | photos | answered with a call | sensitivity | specificity | "
                  "referable called not referable |", "|---|---|---|---|---|---|"]
        for row in graded:
            figures, counts = row["referral"], row["referral"]["counts"]
            name = f"**{row['group']}**" if row.get("total") else row["group"]
            referable = sum(n for key, n in counts.items() if key.startswith("referable_"))
            lines.append(f"| {name} | {figures['photos']} | {figures['answered']:.2f} | "
                         f"{_measured(figures['sensitivity'])} | {_measured(figures['specificity'])} | "
                         f"{counts[f'referable_{NOT_REFERABLE}']} of {referable} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def main() -> None:
    options = parser(__doc__, "record the table in docs/benchmarks.md and the figures in var/domain_shift.json")
    options.add_argument("--per-format", type=int, default=6,
                         help="pages per rendered ECG format and photos per other-camera look")
    options.add_argument("--drawn", type=int, default=24,
                         help="PTB-XL test-patient recordings printed in each other_formats printout format")
    options.add_argument("--capture-photos", type=int, default=12,
                         help="test photos per model re-captured by every capture family")
    options.add_argument("--limit", type=int, default=None,
                         help="at most this many pictures per group, spread over it (a quick look)")
    options.add_argument("--json", type=Path, default=None,
                         help="also write the figures here (with --write: var/domain_shift.json)")
    args = options.parse_args()
    # Where the figures go is not how they were measured: --json stays out of the command shown.
    command = command_line(options, argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "json"}))
    groups = (in_domain_groups(args.capture_photos) + drawn_elsewhere_groups(args.drawn)
              + out_of_domain_groups(args.per_format))
    if args.limit is not None:
        groups = [replace(group, uploads=_spread(group.uploads, args.limit)) for group in groups]
    rows = with_totals(run(groups))
    publish(render(rows, command, args.per_format, args.capture_photos, args.drawn), SECTION, args.write)
    for path in filter(None, [args.json, JSON_PATH if args.write else None]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "measured": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "command": command,
            "confident": CONFIDENT, "models": model_versions(KIND), "groups": rows}, indent=2) + "\n")
        print(f"figures written to {path}")
    if args.write:
        write_cards(rows, command)


# How each family of groups is named on a card page, for a clinician.
CARD_TITLES = {
    "ecg test photos": "Its own test printouts, as taken",
    "retina test photos": "Its own test photos, as taken",
    "ecg capture": "The same, re-captured as clinics do (dim, tilted, recompressed…)",
    "retina capture": "The same, re-captured as clinics do (dim, tilted, recompressed…)",
    "other machines' printouts (samples/ecg)": "Real printouts from other ECG machines",
    "rendered ECG: viewer screenshot": "Screenshots of an ECG viewer's window (not a printout)",
    "PTB-XL drawn elsewhere": "Real recordings printed in other machines' layouts by a second renderer",
    "PTB-XL drawn elsewhere, phone photo": "The same printouts photographed with a phone",
    "other camera": "Its test photos made to look like other cameras' (field, colour, size)",
}


def write_cards(rows: list[dict[str, Any]], command: str, artifacts: Path = ARTIFACTS) -> None:
    """Each model's groups (a family's total where it has several) on its card, under the domain
    section training wrote, published again with its manifest so the registry still verifies it."""
    measured = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}"
    for model in KIND:
        card = Card.read(artifacts / model)
        if "domain" not in card.fields:
            continue
        shown = [row for row in rows if row["model"] == model and (row.get("total") or not any(
            other.get("total") and other["group"].split(":", 1)[0] == row["group"].split(":", 1)[0]
            for other in rows))]
        benchmark = {"measured": measured, "command": command, "confident": CONFIDENT, "groups": [
            {"title": CARD_TITLES.get(row["group"].removesuffix(": all"), row["group"]), "domain": row["domain"],
             "images": row["images"],
             "finding": row["shares"]["confident"], "below": row["shares"]["below"],
             "uncertain": row["shares"]["uncertain"], "refused": row["shares"]["refused"],
             "refused_by": {code: round(n / row["images"], 3) for code, n in row["refused_by"].items()},
             **({"referral": _card_referral(row["referral"])} if "referral" in row else {}),
             **({"findings": {key: row["findings"][key] for key in ("answered", "right_of_answered",
                                                                      "confidently_wrong")}}
                if "findings" in row else {})}
            for row in shown]}
        domain = {**card.fields["domain"], "benchmark": benchmark}
        Card({**card.fields, "domain": domain}).publish(artifacts / model)


def _card_referral(figures: dict[str, Any]) -> dict[str, Any]:
    """A group's referral figures as its card keeps them: the shares with their intervals, and the
    referable eyes called not referable among all the group's referable photos."""
    counts = figures["counts"]
    referable = sum(n for key, n in counts.items() if key.startswith("referable_"))
    return {"answered": figures["answered"], "sensitivity": figures["sensitivity"],
            "specificity": figures["specificity"], "referable_photos": referable,
            "referable_not_referred": counts[f"referable_{NOT_REFERABLE}"]}


if __name__ == "__main__":
    main()
