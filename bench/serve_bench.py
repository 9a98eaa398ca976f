"""Memory and latency of the real site: gunicorn_config.py, HTTP, the four models.

    .venv/bin/python -m bench.serve_bench [--requests 50] [--artifacts DIR] [--database-url URL] [--write]

Prints PSS of master + worker idle, after each model's first prediction and with all
four resident (right after the last answer, and once the worker has trimmed its idle heap, which
the memory target is about); cold first-prediction time per model; warm p50/p95 per model over
--requests requests: the round trip over HTTP, the whole server-side time of the request
(from its arrival in the event loop to its response: body read, parsing, form, decode,
gate, transform, inference, database write, rendering; the bridge's Server-Timing
header), and the span the services time (preprocessing + inference). For the image
models, ONNX Runtime alone on the same input size, with the served session options, in
this process: the issue-17 target is whole ≤ 1.3 × ORT + 10 ms, and ≤ 10 ms for a form.
--write records the figures in docs/benchmarks.md.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from bench.harness import ARTIFACTS, MODELS, Site, image_input, payloads, percentile, timed_runs_ms
from bench.report import command_line, header, parser, publish, verdict
from predictors.server.bridge import HEAP_TRIM_IDLE_SECONDS

# The memory the target is about: the four models loaded, once the worker has returned its idle heap.
RESIDENT = "all four resident, after the idle heap trim"
SETTLE_SECONDS = 2.0
TARGETS = {"all_resident_pss_mb": 200, "warm_p50_ms": {"retina": 25, "ecg": 40, "diabetes": 5, "heart": 5},
           "cold_first_image_s": 1.0, "whole_form_ms": 10, "whole_image_ratio": 1.3, "whole_image_plus_ms": 10}
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def timed_predict(site: Site, model: str, payload) -> tuple[int, dict, float, float]:
    """(status, answer, round trip s, whole server-side ms from the bridge's Server-Timing header)."""
    answer = site.send_prediction(model, payload)
    match = SERVER_TIMING.search(answer.headers.get("Server-Timing") or "")
    return answer.status, json.loads(answer.data), answer.seconds, float(match.group(1)) if match else float("nan")


def ort_alone_ms(model: str, artifacts: Path | None, runs: int) -> float:
    """p50 of ONNX Runtime's run on a model-sized input, session built as the server builds it."""
    from predictors.serving.artifacts import open_artifact
    from predictors.serving.runtimes import RuntimeOptions, runtime_class

    artifact = open_artifact(model, (artifacts or ARTIFACTS) / model)
    runtime = runtime_class(artifact.kind).load(artifact, RuntimeOptions(intra_op_threads=1, graph_optimization="all"))
    x = image_input(artifact.input_spec["height"], artifact.input_spec["width"])
    return percentile(timed_runs_ms(lambda: runtime.predict(x), runs), 50)


def run(requests: int, artifacts: Path | None, database_url: str | None = None) -> dict:
    site = Site(artifacts=artifacts, extra_env={"DATABASE_URL": database_url} if database_url else {}).start()
    try:
        site.request("GET", "/ready/")  # /health/ answers before Django is imported; idle means Django is up
        results: dict = {"startup_seconds": round(site.started_seconds, 2), "pss_mb": {"idle": site.pss_mb()},
                         "cold_seconds": {}, "warm": {}, "database": "PostgreSQL" if database_url else "SQLite"}
        inputs = payloads()
        for model in MODELS:
            _, seconds = site.predict_ok(model, inputs[model])
            results["cold_seconds"][model] = round(seconds, 3)
            results["pss_mb"][f"after {model}"] = site.pss_mb()
        for model in MODELS:
            round_trips, server, whole = [], [], []
            for _ in range(requests):
                status, body, seconds, whole_ms = timed_predict(site, model, inputs[model])
                assert status == 200, body
                round_trips.append(seconds * 1000)
                server.append(body["latency_ms"])
                whole.append(whole_ms)
            results["warm"][model] = {
                "round_trip_p50_ms": round(percentile(round_trips, 50), 1),
                "round_trip_p95_ms": round(percentile(round_trips, 95), 1),
                "whole_p50_ms": round(percentile(whole, 50), 1),
                "whole_p95_ms": round(percentile(whole, 95), 1),
                "inference_p50_ms": round(percentile(server, 50), 1),
                "inference_p95_ms": round(percentile(server, 95), 1),
            }
        results["pss_mb"]["all four resident, right after the last answer"] = site.pss_mb()
        # The worker returns its freed heap once image work has been idle this long (bridge.HeapTrim):
        # the models' own memory is what is left then.
        time.sleep(HEAP_TRIM_IDLE_SECONDS + SETTLE_SECONDS)
        results["pss_mb"][RESIDENT] = site.pss_mb()
    finally:
        site.stop()
    results["ort_alone_p50_ms"] = {model: round(ort_alone_ms(model, artifacts, requests), 1) for model in ("retina", "ecg")}
    return results


def render(results: dict, requests: int, command: str) -> str:
    lines = [f"{header(command)} ({results['database']}).",
             "", f"Start-up to first `/health/` 200: {results['startup_seconds']} s.", "",
             "| moment | master PSS MB | worker PSS MB | total PSS MB |", "|---|---|---|---|"]
    for moment, pss in results["pss_mb"].items():
        lines.append(f"| {moment} | {pss['master']} | {pss['worker']} | {pss['total']} |")
    ort = results["ort_alone_p50_ms"]
    lines += ["", f"| model | cold first prediction s | warm round trip p50 / p95 ms | whole server-side p50 / p95 ms "
                  f"(arrival to response) | preprocessing + inference p50 / p95 ms (services span) | ONNX Runtime "
                  f"alone p50 ms (n={requests}) |", "|---|---|---|---|---|---|"]
    for model in MODELS:
        w = results["warm"][model]
        lines.append(f"| {model} | {results['cold_seconds'][model]} | {w['round_trip_p50_ms']} / "
                     f"{w['round_trip_p95_ms']} | {w['whole_p50_ms']} / {w['whole_p95_ms']} | "
                     f"{w['inference_p50_ms']} / {w['inference_p95_ms']} | {ort.get(model, '—')} |")
    total = results["pss_mb"][RESIDENT]["total"]
    lines += ["", f"Against the targets: {RESIDENT} "
              f"{total} MB PSS (target ≤ {TARGETS['all_resident_pss_mb']}: {verdict(total <= TARGETS['all_resident_pss_mb'])});"]
    for model, target in TARGETS["warm_p50_ms"].items():
        value = results["warm"][model]["inference_p50_ms"]
        lines.append(f"warm {model} p50 {value} ms server-side (target ≤ {target}: {verdict(value <= target)});")
    for model in ("diabetes", "heart"):
        value = results["warm"][model]["whole_p50_ms"]
        lines.append(f"whole {model} request p50 {value} ms (target ≤ {TARGETS['whole_form_ms']}: "
                     f"{verdict(value <= TARGETS['whole_form_ms'])});")
    for model in ("retina", "ecg"):
        value, bound = results["warm"][model]["whole_p50_ms"], TARGETS["whole_image_ratio"] * ort[model] + TARGETS["whole_image_plus_ms"]
        lines.append(f"whole {model} request p50 {value} ms = {value / ort[model]:.2f} × ORT alone (target ≤ 1.3 × "
                     f"{ort[model]} + 10 = {bound:.1f}: {verdict(value <= bound)});")
    cold = max(results["cold_seconds"]["retina"], results["cold_seconds"]["ecg"])
    lines.append(f"slowest cold first image prediction {cold} s (target ≤ {TARGETS['cold_first_image_s']}: "
                 f"{verdict(cold <= TARGETS['cold_first_image_s'])}).")
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--requests", type=int, default=50)
    options.add_argument("--artifacts", type=Path, default=None, help="default: the shipped demo models")
    options.add_argument("--database-url", help="default: a SQLite file of the run's own; a PostgreSQL URL "
                                                "measures the database Render runs (its tables are created)")
    args = options.parse_args()
    results = run(args.requests, args.artifacts, args.database_url)
    publish(render(results, args.requests, command_line(options, args)), "serve-bench", args.write)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
