"""Memory and latency of the real site: gunicorn_config.py, HTTP, the four models.

    .venv/bin/python bench/serve_bench.py [--requests 50] [--artifacts DIR] [--database-url URL] [--write]

Prints PSS of master + worker idle, after each model's first prediction and with all
four resident; cold first-prediction time per model; warm p50/p95 per model over
--requests requests: the round trip over HTTP, the whole server-side time of the request
(from its arrival in the event loop to its response: body read, parsing, form, decode,
gate, transform, inference, database write, rendering; the bridge's Server-Timing
header), and the span the services time (preprocessing + inference). For the image
models, ONNX Runtime alone on the same input size, with the served session options, in
this process: the issue-17 target is whole ≤ 1.3 × ORT + 10 ms, and ≤ 10 ms for a form.
--write records the figures in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, Site, machine, multipart, payloads, percentile  # noqa: E402

MODELS = ("diabetes", "heart", "retina", "ecg")
TARGETS = {"all_resident_pss_mb": 200, "warm_p50_ms": {"retina": 25, "ecg": 40, "diabetes": 5, "heart": 5},
           "cold_first_image_s": 1.0, "whole_form_ms": 10, "whole_image_ratio": 1.3, "whole_image_plus_ms": 10}
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def timed_predict(site: Site, model: str, payload) -> tuple[int, dict, float, float]:
    """(status, answer, round trip s, whole server-side ms from the bridge's Server-Timing header)."""
    headers = {"Authorization": f"Token {site.token}"}
    if isinstance(payload, dict):
        body, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
    else:
        body, headers["Content-Type"] = multipart("image", *payload)
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=120)
    started = time.perf_counter()
    try:
        connection.request("POST", f"/api/v1/predict/{model}", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        match = SERVER_TIMING.search(response.getheader("Server-Timing") or "")
        return response.status, json.loads(data), seconds, float(match.group(1)) if match else float("nan")
    finally:
        connection.close()


def ort_alone_ms(model: str, artifacts: Path | None, runs: int) -> float:
    """p50 of ONNX Runtime's run on a model-sized input, session built as the server builds it."""
    import numpy as np

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "HealthOracle.settings")
    os.environ.setdefault("DEBUG", "1")
    from predictors.serving.artifacts import open_artifact
    from predictors.serving.runtimes import RuntimeOptions, runtime_class

    artifact = open_artifact(model, (artifacts or ROOT / "predictors" / "artifacts") / model)
    runtime = runtime_class(artifact.kind).load(artifact, RuntimeOptions(intra_op_threads=1, graph_optimization="all"))
    spec = artifact.input_spec
    x = np.random.default_rng(0).random((1, 3, spec["height"], spec["width"]), dtype=np.float32)
    runtime.predict(x)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runtime.predict(x)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def run(requests: int, artifacts: Path | None, database_url: str | None = None) -> dict:
    site = Site(artifacts=artifacts, extra_env={"DATABASE_URL": database_url} if database_url else {}).start()
    try:
        site.request("GET", "/ready/")  # /health/ answers before Django is imported; idle means Django is up
        results: dict = {"startup_seconds": round(site.started_seconds, 2), "pss_mb": {"idle": site.pss_mb()},
                         "cold_seconds": {}, "warm": {}, "database": "PostgreSQL" if database_url else "SQLite"}
        inputs = payloads()
        for model in MODELS:
            status, body, seconds = site.predict(model, inputs[model])
            if status != 200:
                raise RuntimeError(f"{model}: HTTP {status} {body}")
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
        results["pss_mb"]["all four resident"] = site.pss_mb()
    finally:
        site.stop()
    results["ort_alone_p50_ms"] = {model: round(ort_alone_ms(model, artifacts, requests), 1) for model in ("retina", "ecg")}
    return results


def render(results: dict, requests: int, command: str) -> str:
    lines = [f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, with `{command}` "
             f"({results['database']}).",
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
    total = results["pss_mb"]["all four resident"]["total"]
    lines += ["", "Against the targets: all four resident "
              f"{total} MB PSS (target ≤ {TARGETS['all_resident_pss_mb']}: {'met' if total <= TARGETS['all_resident_pss_mb'] else 'missed'});"]
    for model, target in TARGETS["warm_p50_ms"].items():
        value = results["warm"][model]["inference_p50_ms"]
        lines.append(f"warm {model} p50 {value} ms server-side (target ≤ {target}: {'met' if value <= target else 'missed'});")
    for model in ("diabetes", "heart"):
        value = results["warm"][model]["whole_p50_ms"]
        lines.append(f"whole {model} request p50 {value} ms (target ≤ {TARGETS['whole_form_ms']}: "
                     f"{'met' if value <= TARGETS['whole_form_ms'] else 'missed'});")
    for model in ("retina", "ecg"):
        value, bound = results["warm"][model]["whole_p50_ms"], TARGETS["whole_image_ratio"] * ort[model] + TARGETS["whole_image_plus_ms"]
        lines.append(f"whole {model} request p50 {value} ms = {value / ort[model]:.2f} × ORT alone (target ≤ 1.3 × "
                     f"{ort[model]} + 10 = {bound:.1f}: {'met' if value <= bound else 'missed'});")
    cold = max(results["cold_seconds"]["retina"], results["cold_seconds"]["ecg"])
    lines.append(f"slowest cold first image prediction {cold} s (target ≤ {TARGETS['cold_first_image_s']}: "
                 f"{'met' if cold <= TARGETS['cold_first_image_s'] else 'missed'}).")
    return "\n".join(lines)


def write_section(name: str, text: str) -> Path:
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    document = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in document:
        document = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, document, flags=re.S)
    else:
        document = document.rstrip() + f"\n\n{block}\n"
    path.write_text(document)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--artifacts", type=Path, default=None, help="default: the shipped demo models")
    parser.add_argument("--database-url", help="default: a SQLite file of the run's own; a PostgreSQL URL "
                                               "measures the database Render runs (its tables are created)")
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    results = run(args.requests, args.artifacts, args.database_url)
    command = ".venv/bin/python bench/serve_bench.py" + (f" --requests {args.requests}" if args.requests != 50 else "")
    if args.database_url:
        command += " --database-url postgres://…"
    text = render(results, args.requests, command)
    print(text)
    print(json.dumps(results))
    if args.write:
        print(f"written to {write_section('serve-bench', text)}")


if __name__ == "__main__":
    main()
