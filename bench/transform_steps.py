"""What each step of the shared image transform costs, on one core.

    taskset -c 0 .venv/bin/python bench/transform_steps.py [--write]

For real photos of ../shared/data (the first of every 20 of each set), times the steps
an upload goes through before the model, each on its own (median over the photos of the
median of REPEATS runs): decode, the gate with its quality check, the ECG page steps
(rectify, light, deskew and turns, the grid crop and suppression) and the fundus light
normalisation, and the whole model_input with and without the steps issue 15 added.
Runs in the web runtime's environment, as the server does.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.serve_bench import write_section  # noqa: E402
from predictors.images import decode, ecg_page, fundus, gate, transform  # noqa: E402
from predictors.serving.artifacts import open_artifact  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
REPEATS = 5
LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}


def _ms(step: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _photos(folder: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((DATA / folder).rglob("*.jpg"))[::20]]


def measure() -> dict[str, dict[str, float]]:
    specs = {name: open_artifact(name, ROOT / "predictors" / "artifacts" / name).input_spec for name in ("retina", "ecg")}
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
    lines = [f"Measured with `{command}` on one core of this machine, nothing else running; medians over "
             "every 20th photo of each labelled set, each the median of 5 runs, in ms.", "",
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    text = render(measure(), "taskset -c 0 .venv/bin/python bench/transform_steps.py")
    print(text)
    if args.write:
        write_section("transform-steps", text)


if __name__ == "__main__":
    main()
