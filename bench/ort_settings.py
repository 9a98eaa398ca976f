"""Which ONNX Runtime graph optimisation level to serve with: load time, memory, latency.

    .venv/bin/python bench/ort_settings.py [--runs 40] [--write]

Each (model, level) loads in a fresh process through the real runtime
(predictors.serving.runtimes.onnx_image), so RSS deltas are not polluted by the previous one.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, RUNTIME_PYTHON, machine, percentile  # noqa: E402
from bench.serve_bench import write_section  # noqa: E402

LEVELS = ("disable", "basic", "extended", "all")
PROBE = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from predictors.serving.artifacts import open_artifact
from predictors.serving.memory import rss_bytes
from predictors.serving.runtimes import RuntimeOptions
from predictors.serving.runtimes.onnx_image import OnnxImage
name, runs, level = sys.argv[1], int(sys.argv[2]), sys.argv[3]
artifact = open_artifact(name, Path("predictors/artifacts") / name)
before = rss_bytes(); started = time.perf_counter()
model = OnnxImage.load(artifact, RuntimeOptions(intra_op_threads=1, graph_optimization=level))
load = time.perf_counter() - started; after_load = rss_bytes()
spec = artifact.input_spec
x = np.random.default_rng(0).standard_normal((1, 3, spec["height"], spec["width"])).astype(np.float32)
model.predict(x)
times = []
for _ in range(runs):
    t = time.perf_counter(); model.predict(x); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"load_s": load, "rss_mb": (rss_bytes() - before) / 2**20, "times": times}))
"""


def measure(model: str, level: str, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(RUNTIME_PYTHON), "-c", PROBE, model, str(runs), level], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return {"load_s": round(data["load_s"], 3), "rss_mb": round(data["rss_mb"], 1),
            "p50_ms": round(percentile(data["times"], 50), 1), "p95_ms": round(percentile(data["times"], 95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    lines = [f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, with "
             f"`.venv/bin/python bench/ort_settings.py`: one intra-op thread, arena off, {args.runs} runs "
             f"of each model's own input size (its card) after one warm-up.", "",
             "| model | level | load s | RSS after load + run MB | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for model in ("retina", "ecg"):
        for level in LEVELS:
            r = measure(model, level, args.runs)
            lines.append(f"| {model} | {level} | {r['load_s']} | {r['rss_mb']} | {r['p50_ms']} | {r['p95_ms']} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("ort-settings", text)


if __name__ == "__main__":
    main()
