"""Which ONNX Runtime settings to serve with: the graph optimisation level, then its memory
options (the CPU arena, the memory pattern). Load time, memory, latency.

    .venv/bin/python -m bench.ort_settings [--runs 40] [--write]

Each (model, setting) loads in a fresh process through the real runtime
(predictors.serving.runtimes.onnx_image), so RSS deltas are not polluted by the previous one,
with glibc's malloc tuned as a gunicorn worker tunes it (serving/memory.tune_malloc, called
in post_fork): the memory options' cost in time is mostly how freed buffers come back.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time

from bench.harness import ARTIFACTS, ROOT, RUNTIME_PYTHON, image_input, percentile, timed_runs_ms
from bench.report import command_line, header, parser, publish

LEVELS = ("disable", "basic", "extended", "all")
# (CPU arena, memory pattern), at the served level.
MEMORY_OPTIONS = ((False, False), (False, True), (True, False), (True, True))


def measure(model: str, level: str, runs: int, arena: bool = False, pattern: bool = True) -> dict:
    out = subprocess.run([str(RUNTIME_PYTHON), "-m", "bench.ort_settings", "--runs", str(runs),
                          "--in-this-process", model, level, str(int(arena)), str(int(pattern))],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return {"load_s": round(data["load_s"], 3), "rss_mb": round(data["rss_mb"], 1),
            "p50_ms": round(percentile(data["times"], 50), 1), "p95_ms": round(percentile(data["times"], 95), 1)}


def measure_in_this_process(model: str, level: str, arena: str, pattern: str, runs: int) -> dict:
    """One (model, setting), in the fresh process measure() starts: load time, RSS the load and
    the runs added, and each run's ms."""
    from predictors.serving.artifacts import open_artifact
    from predictors.serving.memory import rss_bytes, tune_malloc
    from predictors.serving.runtimes import RuntimeOptions
    from predictors.serving.runtimes.onnx_image import OnnxImage

    tune_malloc()
    artifact = open_artifact(model, ARTIFACTS / model)
    before = rss_bytes()
    started = time.perf_counter()
    runtime = OnnxImage.load(artifact, RuntimeOptions(intra_op_threads=1, graph_optimization=level,
                                                      cpu_arena=arena == "1", memory_pattern=pattern == "1"))
    load = time.perf_counter() - started
    x = image_input(artifact.input_spec["height"], artifact.input_spec["width"])
    times = timed_runs_ms(lambda: runtime.predict(x), runs)
    return {"load_s": load, "rss_mb": (rss_bytes() - before) / 2**20, "times": times}


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--runs", type=int, default=40)
    options.add_argument("--in-this-process", nargs=4, metavar=("MODEL", "LEVEL", "ARENA", "PATTERN"),
                         help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.in_this_process:
        print(json.dumps(measure_in_this_process(*args.in_this_process, args.runs)))
        return
    lines = [f"{header(command_line(options, args))}: one intra-op thread, the worker's malloc settings, "
             f"{args.runs} runs of each model's own input size (its card) after one warm-up.", "",
             "Graph optimisation level (arena off, memory pattern on):", "",
             "| model | level | load s | RSS after load + run MB | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for model in ("retina", "ecg"):
        for level in LEVELS:
            r = measure(model, level, args.runs)
            lines.append(f"| {model} | {level} | {r['load_s']} | {r['rss_mb']} | {r['p50_ms']} | {r['p95_ms']} |")
            print(lines[-1], flush=True)
    lines += ["", "Memory options at level `all`:", "",
              "| model | CPU arena | memory pattern | RSS after load + run MB | p50 ms | p95 ms |",
              "|---|---|---|---|---|---|"]
    for model in ("retina", "ecg"):
        for arena, pattern in MEMORY_OPTIONS:
            r = measure(model, "all", args.runs, arena, pattern)
            lines.append(f"| {model} | {'on' if arena else 'off'} | {'on' if pattern else 'off'} | {r['rss_mb']} | "
                         f"{r['p50_ms']} | {r['p95_ms']} |")
            print(lines[-1], flush=True)
    publish("\n".join(lines), "ort-settings", args.write)


if __name__ == "__main__":
    main()
