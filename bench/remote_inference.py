"""A web instance whose image models run on an Open Inference Protocol server, against one that runs them itself.

    .venv/bin/python -m bench.remote_inference [--requests 30] [--seconds 20] [--clients 4] [--write]

Sites one after the other, each the real server (gunicorn_config.py, the runtime environment
.venv) pinned to core 0: one with all four models in its worker (as deployed today); one with
INFERENCE_URL pointing at MLServer (.venv-oip, requirements-oip.txt) serving both image models
from what `manage.py write_inference_repository` writes, pinned to core 1; and, for the web
side's own share, one whose image runtime answers at once (NoInference below, through
MODEL_RUNTIME_OVERRIDES): what a request costs the worker around inference.

Measures, over HTTP on loopback:
- the web worker's PSS, and master + worker, once each of the four models has answered;
- the web worker's CPU seconds (utime + stime from /proc) per image request, over --requests
  requests per image model, against the same request with no inference, and against the site's
  own work on that image in this process: the one shared transform alone
  (predictors/images/transform.model_input), and decoding;
- images answered per second with --clients clients uploading retina and ECG in turn for
  --seconds, IMAGE_CONCURRENCY 1 as deployed (and 2 for the remote site, whose worker waits
  on the server rather than computing).
--write records the figures in docs/benchmarks.md ("Image inference on a model server").
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from bench.harness import ARTIFACTS, MODELS, ModelServer, Site, children, payloads, percentile, pss_kb
from bench.report import command_line, header, model_versions, parser, publish, verdict

IMAGES = ("retina", "ecg")
WEB_CORE, ENGINE_CORE = "0", "1"
TARGETS = {"remote_total_pss_mb": 110, "cpu_ratio": 1.3, "cpu_plus_ms": 5}
TICK = os.sysconf("SC_CLK_TCK")


class NoInference:
    """An image runtime that answers at once (the first label, certain, inside the domain), so a
    site running it spends on an upload what the web process spends around inference."""

    size_bytes = 0

    def __init__(self, labels: int):
        self.labels = labels

    @classmethod
    def load(cls, artifact, options) -> "NoInference":
        return cls(len(artifact.labels))

    def predict(self, features):
        import numpy as np

        from predictors.serving.runtimes.images import ImageOutput

        probabilities = np.zeros(self.labels, dtype=np.float32)
        probabilities[0] = 1
        return ImageOutput(probabilities, np.zeros((9, 9), dtype=np.float32), 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def local_work_ms(requests: int) -> dict[str, dict[str, float]]:
    """CPU ms (p50) this process spends on each image upload's decoding and on the shared transform
    alone, as the site does them (one thread, as in the worker)."""
    from predictors.images.decode import decode
    from predictors.images.transform import model_input
    from predictors.serving.artifacts import open_artifact

    inputs, work = payloads(), {}
    for model in IMAGES:
        spec = open_artifact(model, ARTIFACTS / model).input_spec
        data = inputs[model][1]
        decoded, transformed = [], []
        for _ in range(requests + 1):
            started = time.process_time()
            image = decode(data, max_bytes=50_000_000, max_pixels=60_000_000).image
            middle = time.process_time()
            model_input(image, spec)
            done = time.process_time()
            decoded.append((middle - started) * 1000)
            transformed.append((done - middle) * 1000)
        work[model] = {"transform_ms": round(percentile(transformed[1:], 50), 1),
                       "decode_ms": round(percentile(decoded[1:], 50), 1)}
    return work


def throughput(site: Site, clients: int, seconds: float) -> float:
    """Images answered (200) per second by `clients` clients uploading retina and ECG in turn."""
    inputs, answered, stop = payloads(), [0], threading.Event()
    lock = threading.Lock()

    def client(offset: int) -> None:
        turn = offset
        while not stop.is_set():
            model = IMAGES[turn % 2]
            turn += 1
            if site.send_prediction(model, inputs[model]).status == 200:
                with lock:
                    answered[0] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return round(answered[0] / (time.monotonic() - started), 2)


def measure(site: Site, requests: int) -> dict:
    inputs = payloads()
    for model in MODELS:
        site.predict_ok(model, inputs[model])
    worker = site.workers()[0]
    figures: dict = {"pss_mb": site.pss_mb(), "cpu_ms_per_image": {}, "round_trip_p50_ms": {}}
    for model in IMAGES:
        before, round_trips = cpu_seconds(worker), []
        for _ in range(requests):
            _, seconds = site.predict_ok(model, inputs[model])
            round_trips.append(seconds * 1000)
        figures["cpu_ms_per_image"][model] = round((cpu_seconds(worker) - before) / requests * 1000, 1)
        figures["round_trip_p50_ms"][model] = round(percentile(round_trips, 50), 1)
    return figures


def run(requests: int, seconds: float, clients: int) -> dict:
    pin_web, pin_engine = ["taskset", "-c", WEB_CORE], ["taskset", "-c", ENGINE_CORE]
    results: dict = {"local_work": local_work_ms(requests)}
    site = Site(launch_prefix=pin_web, extra_env={"LOG_LEVEL": "WARNING", "MODEL_RUNTIME_OVERRIDES":
                                                  f"onnx_image={__spec__.name}.NoInference"}).start()
    try:
        results["no_inference"] = measure(site, requests)
    finally:
        site.stop()
    site = Site(launch_prefix=pin_web, extra_env={"LOG_LEVEL": "WARNING"}).start()
    try:
        results["local"] = measure(site, requests)
        results["local"]["images_per_s"] = {"1": throughput(site, clients, seconds)}
    finally:
        site.stop()
    engine = ModelServer(launch_prefix=pin_engine).start()
    try:
        for concurrency in ("1", "2"):
            env = {"INFERENCE_URL": engine.url, "IMAGE_CONCURRENCY": concurrency, "LOG_LEVEL": "WARNING"}
            site = Site(launch_prefix=pin_web, extra_env=env).start()
            try:
                if concurrency == "1":
                    results["remote"] = measure(site, requests)
                    results["remote"]["images_per_s"] = {}
                results["remote"]["images_per_s"][concurrency] = throughput(site, clients, seconds)
            finally:
                site.stop()
        results["engine_pss_mb"] = round(sum(pss_kb(p) for p in [engine.process.pid, *children(engine.process.pid)])
                                         / 1024, 1)
    finally:
        engine.stop()
    return results


def render(results: dict, args, command: str) -> str:
    local, remote, work, bare = results["local"], results["remote"], results["local_work"], results["no_inference"]
    lines = [f"{header(command, model_versions(IMAGES))}.", "",
             f"Web site pinned to core {WEB_CORE}; MLServer 1.7.1 (one process, JSON tensors: it has no binary "
             f"tensor extension) pinned to core {ENGINE_CORE}, its PSS {results['engine_pss_mb']} MB with both "
             "image models loaded.", "",
             "| | all four models in the worker | image models on MLServer | no inference at all |",
             "|---|---|---|---|",
             f"| worker PSS MB, each model used once | {local['pss_mb']['worker']} | {remote['pss_mb']['worker']} | "
             f"{bare['pss_mb']['worker']} |",
             f"| master + worker PSS MB | {local['pss_mb']['total']} | {remote['pss_mb']['total']} | "
             f"{bare['pss_mb']['total']} |"]
    for model in IMAGES:
        lines.append(f"| {model}: worker CPU ms per request (n={args.requests}) | "
                     f"{local['cpu_ms_per_image'][model]} | {remote['cpu_ms_per_image'][model]} | "
                     f"{bare['cpu_ms_per_image'][model]} |")
        lines.append(f"| {model}: round trip p50 ms | {local['round_trip_p50_ms'][model]} | "
                     f"{remote['round_trip_p50_ms'][model]} | {bare['round_trip_p50_ms'][model]} |")
    lines.append(f"| images per second, {args.clients} clients, {args.seconds:g} s, IMAGE_CONCURRENCY=1 | "
                 f"{local['images_per_s']['1']} | {remote['images_per_s']['1']} | — |")
    lines.append(f"| the same, IMAGE_CONCURRENCY=2 | — | {remote['images_per_s']['2']} | — |")
    lines += ["", "The site's own work on each upload in one process, CPU ms p50: "
              + "; ".join(f"{m}: decoding {work[m]['decode_ms']}, the shared transform alone {work[m]['transform_ms']}"
                          for m in IMAGES) + ".", ""]
    total = remote["pss_mb"]["total"]
    lines.append(f"Against the targets: web master + worker with both image models remote {total} MB PSS "
                 f"(target ≤ {TARGETS['remote_total_pss_mb']}: {verdict(total <= TARGETS['remote_total_pss_mb'])});")
    for model in IMAGES:
        value, transform, around = (remote["cpu_ms_per_image"][model], work[model]["transform_ms"],
                                    bare["cpu_ms_per_image"][model])
        bound = TARGETS["cpu_ratio"] * transform + TARGETS["cpu_plus_ms"]
        lines.append(f"{model} worker CPU per request {value} ms (target ≤ 1.3 × the transform alone {transform} + 5 = "
                     f"{bound:.1f}: {verdict(value <= bound)}; the same request with no inference costs {around}, "
                     f"so the remote call adds {value - around:.1f} ms);")
    lines[-1] = lines[-1].rstrip(";") + "."
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--requests", type=int, default=30)
    options.add_argument("--seconds", type=float, default=20.0)
    options.add_argument("--clients", type=int, default=4)
    args = options.parse_args()
    results = run(args.requests, args.seconds, args.clients)
    publish(render(results, args, command_line(options, args)), "remote-inference", args.write)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
