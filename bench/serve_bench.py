"""Memory and latency of the real site: gunicorn_config.py, HTTP, the four models.

    .venv/bin/python bench/serve_bench.py [--requests 50] [--artifacts DIR] [--write]

Prints PSS of master + worker idle, after each model's first prediction and with all
four resident; cold first-prediction time per model; warm p50/p95 per model over
--requests requests (round trip over HTTP, and the server's own preprocessing +
inference time). --write records the figures in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, Site, machine, payloads, percentile  # noqa: E402

MODELS = ("diabetes", "heart", "retina", "ecg")
TARGETS = {"all_resident_pss_mb": 200, "warm_p50_ms": {"retina": 25, "ecg": 40, "diabetes": 5, "heart": 5},
           "cold_first_image_s": 1.0}


def run(requests: int, artifacts: Path | None) -> dict:
    site = Site(artifacts=artifacts).start()
    try:
        results: dict = {"startup_seconds": round(site.started_seconds, 2), "pss_mb": {"idle": site.pss_mb()},
                         "cold_seconds": {}, "warm": {}}
        inputs = payloads()
        for model in MODELS:
            status, body, seconds = site.predict(model, inputs[model])
            if status != 200:
                raise RuntimeError(f"{model}: HTTP {status} {body}")
            results["cold_seconds"][model] = round(seconds, 3)
            results["pss_mb"][f"after {model}"] = site.pss_mb()
        for model in MODELS:
            round_trips, server = [], []
            for _ in range(requests):
                status, body, seconds = site.predict(model, inputs[model])
                assert status == 200, body
                round_trips.append(seconds * 1000)
                server.append(body["latency_ms"])
            results["warm"][model] = {
                "round_trip_p50_ms": round(percentile(round_trips, 50), 1),
                "round_trip_p95_ms": round(percentile(round_trips, 95), 1),
                "inference_p50_ms": round(percentile(server, 50), 1),
                "inference_p95_ms": round(percentile(server, 95), 1),
            }
        results["pss_mb"]["all four resident"] = site.pss_mb()
        return results
    finally:
        site.stop()


def render(results: dict, requests: int, command: str) -> str:
    lines = [f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, with `{command}`.",
             "", f"Start-up to first `/health/` 200: {results['startup_seconds']} s.", "",
             "| moment | master PSS MB | worker PSS MB | total PSS MB |", "|---|---|---|---|"]
    for moment, pss in results["pss_mb"].items():
        lines.append(f"| {moment} | {pss['master']} | {pss['worker']} | {pss['total']} |")
    lines += ["", f"| model | cold first prediction s | warm round trip p50 / p95 ms | warm preprocessing + "
                  f"inference p50 / p95 ms (server, n={requests}) |", "|---|---|---|---|"]
    for model in MODELS:
        w = results["warm"][model]
        lines.append(f"| {model} | {results['cold_seconds'][model]} | {w['round_trip_p50_ms']} / "
                     f"{w['round_trip_p95_ms']} | {w['inference_p50_ms']} / {w['inference_p95_ms']} |")
    total = results["pss_mb"]["all four resident"]["total"]
    lines += ["", "Against the targets: all four resident "
              f"{total} MB PSS (target ≤ {TARGETS['all_resident_pss_mb']}: {'met' if total <= TARGETS['all_resident_pss_mb'] else 'missed'});"]
    for model, target in TARGETS["warm_p50_ms"].items():
        value = results["warm"][model]["inference_p50_ms"]
        lines.append(f"warm {model} p50 {value} ms server-side (target ≤ {target}: {'met' if value <= target else 'missed'});")
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
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    results = run(args.requests, args.artifacts)
    command = ".venv/bin/python bench/serve_bench.py" + (f" --requests {args.requests}" if args.requests != 50 else "")
    text = render(results, args.requests, command)
    print(text)
    print(json.dumps(results))
    if args.write:
        print(f"written to {write_section('serve-bench', text)}")


if __name__ == "__main__":
    main()
