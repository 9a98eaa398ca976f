"""Ours against the naive torch stack, side by side in one run, with ratios.

    .venv-dev/bin/python -m bench.compare_bench [--requests 50] [--load-seconds 10] [--write]

"ours" is the site as deployed: runtime environment (.venv, requirements.txt only),
ONNX Runtime for images, XGBoost without scikit-learn. "baseline" is the same site run
the way the sites it replaces run: training environment (.venv-dev: torch, torchvision
and scikit-learn installed, so xgboost imports scikit-learn) with the image models
served by PyTorch (bench/torch_runtime.py). Same gunicorn_config.py, same requests.
Load generation uses wrk (Debian package `wrk`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from bench.harness import MODELS, ROOT, PssSampler, Site, health_probes, payloads, percentile, request_body
from bench.report import command_line, header, parser, publish

DEV_PYTHON = ROOT / ".venv-dev" / "bin" / "python"
WRK_SCRIPT = """
local f = io.open(os.getenv("WRK_BODY"), "rb"); wrk.body = f:read("*all"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("WRK_CTYPE")
wrk.headers["Authorization"] = "Token " .. os.getenv("WRK_TOKEN")
"""


def health_during(site: Site, action) -> dict:
    """Probe /health/ every 20 ms while `action` runs in another thread."""
    done = threading.Event()

    def run() -> None:
        try:
            action()
        finally:
            done.set()

    worker = threading.Thread(target=run)
    worker.start()
    times: list[float] = []
    for probe in health_probes(site, every=0.02, timeout=10, stop=done):
        if probe.status is None:
            raise RuntimeError(f"/health/ did not answer while the action ran: {probe.error}")
        times.append(probe.seconds * 1000)
    worker.join()
    return {"n": len(times), "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
            "max_ms": round(max(times), 1)}


def wrk(site: Site, model: str, payload, connections: int, seconds: int, workdir: Path) -> dict:
    body, ctype = request_body(payload)
    body_path = workdir / f"{model}.body"
    body_path.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "WRK_BODY": str(body_path), "WRK_CTYPE": ctype, "WRK_TOKEN": site.token}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
                          f"http://127.0.0.1:{site.port}/api/v1/predict/{model}"], env=env, capture_output=True,
                         text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": round(rps, 1), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def measure(name: str, site: Site, requests: int, load_seconds: int) -> dict:
    site.start()
    inputs = payloads()
    result: dict = {"startup_s": round(site.started_seconds, 2), "pss_mb": {"idle": site.pss_mb()["total"]},
                    "cold_s": {}, "warm_ms": {}, "rps": {}}
    try:
        with PssSampler(site, every=0.2) as memory:
            # /health/ while the slowest model loads cold: a real first request for it.
            result["health_during_ecg_load"] = health_during(site, lambda: site.predict("ecg", inputs["ecg"]))
            site.stop()
            site.start()
            for model in MODELS:
                _, seconds = site.predict_ok(model, inputs[model])
                result["cold_s"][model] = round(seconds, 3)
                result["pss_mb"][f"after {model}"] = site.pss_mb()["total"]
            for model in MODELS:
                times = [site.predict_ok(model, inputs[model])[0]["latency_ms"] for _ in range(requests)]
                result["warm_ms"][model] = {q: round(percentile(times, q), 1) for q in (50, 95, 99)}
            result["pss_mb"]["all four resident"] = site.pss_mb()["total"]

            def image_load():
                for _ in range(15):
                    site.predict("ecg", inputs["ecg"])
            result["health_during_image_requests"] = health_during(site, image_load)
            with tempfile.TemporaryDirectory() as tmp:
                for model in ("diabetes", "retina"):
                    for connections in (1, 2, 4):
                        result["rps"][f"{model} c={connections}"] = wrk(site, model, inputs[model], connections,
                                                                        load_seconds, Path(tmp))
        result["pss_mb"]["peak"] = round(memory.peak_mb, 1)
        return result
    finally:
        site.stop()


def render(ours: dict, base: dict, requests: int, load_seconds: int, command: str) -> str:
    def ratio(b, o):
        return f"{b / o:.1f}×" if o else "n/a"

    lines = [f"{header(command)}, one run ({requests} warm requests per model, wrk "
             f"{load_seconds} s per load point). Ours: runtime environment, ONNX Runtime (1 thread). Baseline: "
             "the same site from the training environment with the image models in PyTorch (default threads) "
             "and scikit-learn installed beside xgboost. Same gunicorn_config.py.", "",
             "| memory (master + worker PSS, MB) | ours | baseline | baseline / ours |", "|---|---|---|---|"]
    for key in ours["pss_mb"]:
        lines.append(f"| {key} | {ours['pss_mb'][key]} | {base['pss_mb'][key]} | "
                     f"{ratio(base['pss_mb'][key], ours['pss_mb'][key])} |")
    lines += ["", "| latency | ours | baseline | baseline / ours |", "|---|---|---|---|",
              f"| start-up to first /health/ 200 (s) | {ours['startup_s']} | {base['startup_s']} | "
              f"{ratio(base['startup_s'], ours['startup_s'])} |"]
    for model in MODELS:
        lines.append(f"| {model} cold first prediction (s, round trip) | {ours['cold_s'][model]} | "
                     f"{base['cold_s'][model]} | {ratio(base['cold_s'][model], ours['cold_s'][model])} |")
    for model in MODELS:
        o, b = ours["warm_ms"][model], base["warm_ms"][model]
        lines.append(f"| {model} warm preprocessing + inference p50 / p95 / p99 (ms) | {o[50]} / {o[95]} / {o[99]} | "
                     f"{b[50]} / {b[95]} / {b[99]} | {ratio(b[50], o[50])} (p50) |")
    for key in ("health_during_ecg_load", "health_during_image_requests"):
        o, b = ours[key], base[key]
        lines.append(f"| /health/ {key.split('_during_')[1].replace('_', ' ')}: p50 / p99 / max (ms) | "
                     f"{o['p50_ms']} / {o['p99_ms']} / {o['max_ms']} (n={o['n']}) | "
                     f"{b['p50_ms']} / {b['p99_ms']} / {b['max_ms']} (n={b['n']}) | {ratio(b['p99_ms'], o['p99_ms'])} (p99) |")
    lines += ["", "| throughput (requests/s, wrk) | ours | baseline | ours / baseline |", "|---|---|---|---|"]
    for key in ours["rps"]:
        o, b = ours["rps"][key], base["rps"][key]
        note = "" if not (o["non_2xx"] or b["non_2xx"]) else f" (non-2xx: {o['non_2xx']} / {b['non_2xx']})"
        lines.append(f"| {key}{note} | {o['rps']} | {b['rps']} | {ratio(o['rps'], b['rps'])} |")
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--requests", type=int, default=50)
    options.add_argument("--load-seconds", type=int, default=10)
    options.add_argument("--artifacts", type=Path, default=None, help="default: the shipped demo models")
    args = options.parse_args()
    ours = measure("ours", Site(artifacts=args.artifacts), args.requests, args.load_seconds)
    base = measure("baseline", Site(python=DEV_PYTHON, artifacts=args.artifacts, extra_env={
        "MODEL_RUNTIME_OVERRIDES": "onnx_image=bench.torch_runtime.TorchImage", "PYTHONPATH": str(ROOT)}),
        args.requests, args.load_seconds)
    publish(render(ours, base, args.requests, args.load_seconds, command_line(options, args)), "compare-bench",
            args.write)
    print(json.dumps({"ours": ours, "baseline": base}))


if __name__ == "__main__":
    main()
