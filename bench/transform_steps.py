"""What each step of the shared image transform costs, on one core.

    taskset -c 0 .venv/bin/python -m bench.transform_steps [--write]

For real photos of ../shared/data (the first of every 20 of each set), times the steps
an upload goes through before the model, each on its own (median over the photos of the
median of REPEATS runs): decode, the gate with its quality check, the ECG page steps
(rectify, light, deskew and turns, the grid crop and suppression) and the fundus light
normalisation, and the whole model_input with and without the steps issue 15 added.
Runs in the web runtime's environment, as the server does.
"""
from __future__ import annotations

import statistics
from typing import Any, Callable

import numpy as np
from PIL import Image

from bench.harness import ARTIFACTS, ROOT, timed_runs_ms
from bench.report import command_line, header, parser, publish
from predictors.images import decode, ecg_page, fundus, gate, transform
from predictors.serving.artifacts import open_artifact

DATA = ROOT.parent / "shared" / "data"
REPEATS = 5
LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}


def _ms(step: Callable[[], Any]) -> float:
    return statistics.median(timed_runs_ms(step, REPEATS, warm_up=False))


def _photos(folder: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((DATA / folder).rglob("*.jpg"))[::20]]


def measure() -> dict[str, dict[str, float]]:
    specs = {name: open_artifact(name, ARTIFACTS / name).input_spec for name in ("retina", "ecg")}
    before = {name: {k: v for k, v in spec.items() if k not in ("page", "light")} for name, spec in specs.items()}
    rows: dict[str, dict[str, list[float]]] = {"ecg": {}, "retina": {}}

    def add(model: str, step: str, value: float) -> None:
        rows[model].setdefault(step, []).append(value)

    for data in _photos("ecg-khan"):
        image = decode.decode(data, **LIMITS).image
        add("ecg", "decode", _ms(lambda: decode.decode(data, **LIMITS)))
        add("ecg", "gate and quality check", _ms(lambda: gate.gate(image, "ecg")))
        working = ecg_page._working_size(image)
        add("ecg", "page: working size", _ms(lambda: ecg_page._working_size(image)))
        add("ecg", "page: find and rectify the paper", _ms(lambda: ecg_page.rectify_paper(working)))
        lit = ecg_page.normalise_light(working)
        add("ecg", "page: even out the light", _ms(lambda: ecg_page.normalise_light(working)))
        grey = np.asarray(lit.convert("L"), dtype=np.float32)
        add("ecg", "page: read the tilt and turn", _ms(lambda: (ecg_page.tilt_degrees(grey),
                                                                   ecg_page.is_quarter_turned(grey))))
        page = ecg_page.prepare_page(image)
        add("ecg", "lead area crop and upright check", _ms(lambda: ecg_page.crop_ecg_grid(page, turn_upright=True)))
        add("ecg", "model_input, issue 15 steps", _ms(lambda: transform.model_input(image, specs["ecg"])))
        add("ecg", "model_input without them", _ms(lambda: transform.model_input(image, before["ecg"])))
    for data in _photos("fundus-idrid"):
        image = decode.decode(data, **LIMITS).image
        add("retina", "decode", _ms(lambda: decode.decode(data, **LIMITS)))
        add("retina", "gate and quality check", _ms(lambda: gate.gate(image, "fundus")))
        add("retina", "field-of-view crop", _ms(lambda: fundus.crop_field_of_view(image)))
        size = (specs["retina"]["width"], specs["retina"]["height"])
        resized = np.asarray(fundus.crop_field_of_view(image).resize(size, Image.Resampling.BILINEAR),
                             dtype=np.float32)
        add("retina", "light and colour normalisation", _ms(lambda: fundus.normalise_fundus(resized)))
        add("retina", "model_input, issue 15 steps", _ms(lambda: transform.model_input(image, specs["retina"])))
        add("retina", "model_input without them", _ms(lambda: transform.model_input(image, before["retina"])))
    return {model: {step: statistics.median(values) for step, values in steps.items()} for model, steps in rows.items()}


def render(results: dict[str, dict[str, float]], command: str) -> str:
    lines = [f"{header(command)}: one core, nothing else running; medians over every 20th photo of each "
             "labelled set, each the median of 5 runs, in ms.", "",
             "| step | ECG | retina |", "|---|---|---|"]
    steps = list(dict.fromkeys([*results["ecg"], *results["retina"]]))
    for step in steps:
        cells = [f"{results[m][step]:.1f}" if step in results[m] else "–" for m in ("ecg", "retina")]
        lines.append(f"| {step} | {cells[0]} | {cells[1]} |")
    added = {m: results[m]["model_input, issue 15 steps"] - results[m]["model_input without them"] for m in results}
    lines += ["", "What the issue-15 steps add to model_input: " + ", ".join(
        f"{m} {value:+.1f} ms" for m, value in added.items()) + " (budget: +10 ms)."]
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    args = options.parse_args()
    publish(render(measure(), command_line(options, args, prefix="taskset -c 0 ")), "transform-steps", args.write)


if __name__ == "__main__":
    main()
