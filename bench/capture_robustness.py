"""The image models on their held-out test photos re-captured the ways a clinic captures them.

    .venv-dev/bin/python -m bench.capture_robustness [--models retina ecg] [--limit N] [--write]

Each model's test split (the file names its card lists; never a fitting or validation
image) is sent to the real server (gunicorn_config.py, the runtime environment, the
shipped artifacts) through the API, as the original file and re-captured by every
family of predictors.training.captures.BENCHMARK at each strength, seeded per image so a
run is reproducible. Per family and strength it reports how often the answer is flagged
uncertain (no call: a human read), right, refused (by the reason the API gives) and
confidently wrong: wrong at predictors.catalogue.CONFIDENT or more (ECG: the top class's
probability; retina: the API's referable call, with P(grade >= 2) at least CONFIDENT on the
wrong side). --write records the tables in docs/benchmarks.md and on each card (card.json
"robustness", published again through Card.publish), where the card page shows them.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from bench.harness import ARTIFACTS, Site
from bench.report import command_line, header, model_versions, parser, publish
from predictors.catalogue import CONFIDENT, SPECS
from predictors.serving.artifacts import Card
from predictors.training import captures, real_images

CLIENTS = 2
KIND = {"retina": "fundus", "ecg": "ecg"}
REFERABLE_GRADE = SPECS["retina"].referable_grade


def _test_items(card: dict[str, Any], name: str) -> list[tuple[Path, int]]:
    root = real_images.data_root()
    labels = {str(item.path.relative_to(root)): item.label
              for item in (real_images.fundus_images() if name == "retina" else real_images.ecg_images())}
    return [(root / file, labels[file]) for file in card["data"]["test_files"]]


def _judge(name: str, truth: int, status: int, body: dict[str, Any]) -> str:
    """One answer as "right", "uncertain", "wrong", "confidently_wrong" or "refused:<code>"."""
    if status != 200:
        return f"refused:{body.get('error', {}).get('code', status)}"
    result = body
    if result.get("uncertain"):  # the site's answer is "needs a human read", whatever it leans to
        return "uncertain"
    if name == "retina":
        referable = result["referable_probability"]
        right = result["referable_dr"] == (truth >= REFERABLE_GRADE)
        confident = referable >= CONFIDENT or referable <= 1 - CONFIDENT
    else:
        right = result["class_index"] == truth
        confident = result["confidence"] >= CONFIDENT
    if right:
        return "right"
    return "confidently_wrong" if confident else "wrong"


def run(models: list[str], limit: int | None, artifacts: Path) -> dict[str, list[dict[str, Any]]]:
    site = Site(artifacts=artifacts).start()
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for name in models:
            card = json.loads((artifacts / name / "card.json").read_text())
            items = _test_items(card, name)[:limit]
            rows = []
            conditions = [None, *(c for c in captures.BENCHMARK if KIND[name] in c.kinds)]
            for condition in conditions:
                started = time.perf_counter()

                def answer(numbered: tuple[int, tuple[Path, int]]) -> str:
                    n, (path, truth) = numbered
                    if condition is None:
                        data = path.read_bytes()
                    else:
                        with Image.open(path) as original:
                            data = captures.recapture(original, condition, seed=n)
                    status, body, _ = site.predict(name, (path.stem + ".jpg", data))
                    return _judge(name, truth, status, body)

                # Two at a time: one photo is re-captured here while the server reads the other.
                with ThreadPoolExecutor(CLIENTS) as pool:
                    outcomes = Counter(pool.map(answer, enumerate(items)))
                row = _row(condition, outcomes, len(items))
                rows.append(row)
                print(f"{name} {row['capture']:<18} right {row['right']:.2f}  uncertain {row['uncertain']:.2f}  "
                      f"refused {row['refused']:.2f}  confidently wrong {row['confidently_wrong']:.2f}  "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            results[name] = rows
    finally:
        site.stop()
    return results


def _row(condition: captures.Capture | None, outcomes: Counter[str], images: int) -> dict[str, Any]:
    refusals = {key.split(":", 1)[1]: count for key, count in outcomes.items() if key.startswith("refused:")}
    share = lambda count: round(count / images, 3)  # noqa: E731
    return {
        "capture": "original" if condition is None else condition.label,
        "family": "original" if condition is None else condition.family,
        "strength": None if condition is None else condition.strength,
        "images": images,
        "right": share(outcomes["right"]),
        "uncertain": share(outcomes["uncertain"]),
        "refused": share(sum(refusals.values())),
        "refused_by": {code: share(count) for code, count in sorted(refusals.items())},
        "wrong": share(outcomes["wrong"]),
        "confidently_wrong": share(outcomes["confidently_wrong"]),
    }


def render(results: dict[str, list[dict[str, Any]]], command: str, artifacts: Path) -> str:
    lines = [f"{header(command, model_versions(results, artifacts))}: the served models through the API of a "
             "real server. Shares of each model's held-out test photos; "
             f"\"confidently wrong\" is wrong at {CONFIDENT:.0%} or more (retina: the referable call, "
             f"P(grade ≥ {REFERABLE_GRADE}) ≥ {CONFIDENT:g} or ≤ {1 - CONFIDENT:.2g} on the wrong side) and not "
             "flagged uncertain.", ""]
    for name, rows in results.items():
        lines += [f"{name} ({rows[0]['images']} test photos):", "",
                  "| capture | right | uncertain | refused (reason) | wrong | confidently wrong |",
                  "|---|---|---|---|---|---|"]
        for row in rows:
            reasons = ", ".join(f"{code} {value:.2f}" for code, value in row["refused_by"].items())
            lines.append(f"| {row['capture']} | {row['right']:.2f} | {row['uncertain']:.2f} | "
                         f"{row['refused']:.2f}{f' ({reasons})' if reasons else ''} | {row['wrong']:.2f} | "
                         f"{row['confidently_wrong']:.2f} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def write_cards(results: dict[str, list[dict[str, Any]]], command: str, artifacts: Path = ARTIFACTS) -> None:
    """The rows on each card, published again with its manifest so the registry still verifies it."""
    for name, rows in results.items():
        card = Card.read(artifacts / name)
        robustness = {"measured": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}", "command": command,
                      "confident": CONFIDENT, "rows": rows}
        Card({**card.fields, "robustness": robustness}).publish(artifacts / name)


def main() -> None:
    options = parser(__doc__, write_help="record in docs/benchmarks.md and on the cards")
    options.add_argument("--models", nargs="+", default=["retina", "ecg"], choices=["retina", "ecg"])
    options.add_argument("--limit", type=int, default=None, help="first N test photos only (a quick look)")
    options.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="default: the shipped models")
    args = options.parse_args()
    if args.write and (args.limit or args.artifacts != ARTIFACTS):
        options.error("--write records the shipped models' whole test splits only")
    results = run(args.models, args.limit, args.artifacts)
    command = command_line(options, args)
    publish(render(results, command, args.artifacts), "capture-robustness", args.write)
    if args.write:
        write_cards(results, command)


if __name__ == "__main__":
    main()
