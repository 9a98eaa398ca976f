"""Where an image request's time goes inside the real server, step by step, on one core.

    .venv/bin/python -m bench.request_profile [--requests 40] [--rate 250] [--core 1] [--via page] [--write]

Serves the shipped models with gunicorn_config.py pinned to one core (taskset), warms each
image model, then samples the worker with py-spy (from the development environment,
.venv-dev/bin/py-spy, or PY_SPY) while --requests uploads of that model are answered
one after another: API uploads, or with --via page the photo sent through the model's
page form by a logged-in clinician and answered by the result page, as bench/visit.py
sends it (its session cookie and CSRF token). Each sample is given to the innermost step its stack is in (the
table STEPS, leaf first), so the ECG page analysis inside the model transform counts as
the transform, and a database call inside the services counts as the database. The
figure per step is milliseconds of one request (samples / rate / requests); "server,
other" is what the sampled threads did outside every named step. Both threads are
sampled whenever they can run, so on one core the event loop's turns and Django's thread
waiting for the core while handing its answer over overlap: "all sampled" exceeds the
whole request by about that much. So before sampling, the same number of uploads is
answered unsampled and the worker's CPU time read from /proc (schedstat, per thread): its
event loop's thread (reading, admission, sending) and Django's threads (the application,
and the heap trim once image work idles), with no overlap. ONNX Runtime alone is timed in
this process on a model-sized input, as serve_bench does.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import ROOT, Payload, Site, payloads, percentile
from bench.report import command_line, header, parser, publish
from bench.serve_bench import SERVER_TIMING, ort_alone_ms, timed_predict
from bench.visit import Visitor, image_answer, logged_in

IMAGE_MODELS = ("retina", "ecg")
# (step, what a frame's text holds when the sample is inside it), innermost steps first.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ONNX Runtime", ("predictors/serving/runtimes/",)),
    ("model transform (page, crop, resize, normalise)", ("predictors/images/transform.py",)),
    ("quality check", ("predictors/images/quality.py",)),
    ("gate (kind of picture)", ("predictors/images/gate.py",)),
    ("decode (incl. hash)", ("predictors/images/decode.py",)),
    ("activation map", ("predictors/images/activation_maps.py",)),
    ("thumbnails", ("thumbnail (predictors/presentation.py",)),
    ("database write", ("django/db/",)),
    ("multipart parsing", ("django/http/multipartparser.py", "predictors/uploads.py")),
    ("JSON encoding", ("json/encoder.py", "json/__init__.py")),
    ("templates", ("django/template/",)),
    ("form and field validation", ("django/forms/", "predictors/forms.py", "predictors/inputs/")),
    ("heap trim once image work idles (not in Server-Timing)", ("predictors/serving/memory.py",)),
    ("sessions and authentication", ("django/contrib/sessions/", "django/contrib/auth/")),
    ("CSRF check", ("django/middleware/csrf.py",)),
    ("logging", ("logging/__init__.py",)),
    ("Django's request handling (middleware, view, auth)", ("django/core/handlers/",)),
    # On one core the event loop's turn preempts Django's thread (niced) as that thread hands
    # its answer over: both are sampled, so these two overlap.
    ("Django's thread handing its answer to the event loop", ("call_soon_threadsafe (",)),
    ("event loop (reading, queueing, sending)", ("_run_once (",)),
)
OTHER = "server, other"


def py_spy() -> str:
    found = os.environ.get("PY_SPY") or shutil.which("py-spy") or str(ROOT / ".venv-dev" / "bin" / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: install requirements-dev.txt into .venv-dev, or set PY_SPY")
    return found


def step_of(stack: str) -> str:
    """The innermost named step of one collapsed stack ("outer;...;leaf")."""
    for frame in reversed(stack.split(";")):
        for step, marks in STEPS:
            if any(mark in frame for mark in marks):
                return step
    return OTHER


def attribute(raw: str) -> collections.Counter:
    """Samples per step from py-spy's raw (collapsed) output."""
    counts: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[step_of(stack)] += int(count)
    return counts


VIAS = ("api", "page")
Upload = Callable[[], float]  # sends one upload, checks its answer, returns its Server-Timing ms


def api_upload(site: Site, model: str, payload: Payload) -> Upload:
    def send() -> float:
        status, body, _, whole_ms = timed_predict(site, model, payload)
        assert status == 200, body
        return whole_ms
    return send


def page_upload(visitor: Visitor, model: str, payload: Payload) -> Upload:
    step = image_answer(f"{model} page upload", model, payload)

    def send() -> float:
        body, content_type = step.form(visitor.token)
        answer = visitor.send("POST", step.path, body, content_type)
        assert answer.status == 200 and step.shows in answer.data, (answer.status, answer.data[-500:])
        match = SERVER_TIMING.search(answer.headers.get("Server-Timing") or "")
        return float(match.group(1)) if match else float("nan")
    return send


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Nanoseconds each thread of a process has run, by thread id (/proc schedstat)."""
    ran = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ran[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except OSError:  # the thread ended while it was listed
            pass
    return ran


def worker_cpu(site: Site, upload: Upload, requests: int) -> dict:
    """The worker's CPU ms per upload, unsampled: its event loop's thread (the main thread) and the others."""
    worker = site.workers()[0]
    before = thread_cpu_ns(worker)
    for _ in range(requests):
        upload()
    after = thread_cpu_ns(worker)
    ran = {tid: after[tid] - before.get(tid, 0) for tid in after}
    event_loop = ran.pop(worker, 0)
    return {"event_loop_ms": round(event_loop / requests / 1e6, 1),
            "django_threads_ms": round(sum(ran.values()) / requests / 1e6, 1),
            "worker_ms": round((event_loop + sum(ran.values())) / requests / 1e6, 1)}


def profile_model(site: Site, upload: Upload, requests: int, rate: int) -> dict:
    """Per-step ms of one request, and the whole server-side p50 over the same requests."""
    worker = site.workers()[0]
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as out:
        raw_path = Path(out.name)
    recorder = subprocess.Popen([py_spy(), "record", "--pid", str(worker), "--rate", str(rate), "--format", "raw",
                                 "--nonblocking", "--output", str(raw_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    whole = []
    try:
        for _ in range(requests):
            whole.append(upload())
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        _, err = recorder.communicate(timeout=60)
    counts = attribute(raw_path.read_text())
    raw_path.unlink()
    if not counts:
        raise SystemExit(f"py-spy recorded nothing: {err.decode()[-500:]}")
    per_request = {step: round(samples / rate / requests * 1000, 1) for step, samples in counts.items()}
    return {"steps_ms": per_request, "whole_p50_ms": round(percentile(whole, 50), 1),
            "sampled_ms": round(sum(counts.values()) / rate / requests * 1000, 1)}


def run(requests: int, rate: int, core: int, via: str) -> dict:
    site = Site(launch_prefix=["taskset", "-c", str(core)]).start()
    inputs = payloads()
    try:
        site.request("GET", "/ready/")
        visitor = logged_in(site) if via == "page" else None
        results = {}
        for model in IMAGE_MODELS:
            upload = page_upload(visitor, model, inputs[model]) if visitor else api_upload(site, model, inputs[model])
            for _ in range(3):  # loaded, warmed, first-use allocations done
                upload()
            cpu = worker_cpu(site, upload, requests)
            results[model] = {**profile_model(site, upload, requests, rate), "cpu": cpu}
    finally:
        site.stop()
    for model in IMAGE_MODELS:
        results[model]["ort_alone_p50_ms"] = round(ort_alone_ms(model, None, requests), 1)
    return results


def render(results: dict, command: str, via: str) -> str:
    order = [step for step, _ in STEPS] + [OTHER]
    upload = "API upload" if via == "api" else "upload through the page form (its result page)"
    lines = [f"{header(command)}.", "",
             f"Milliseconds of one warm {upload}, by step, on one core (py-spy samples of the worker's threads):",
             "", "| step | " + " | ".join(IMAGE_MODELS) + " |", "|---|" + "---|" * len(IMAGE_MODELS)]
    for step in order:
        values = [results[m]["steps_ms"].get(step, 0.0) for m in IMAGE_MODELS]
        if any(values):
            lines.append(f"| {step} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    lines.append("| **all sampled** | " + " | ".join(f"**{results[m]['sampled_ms']:.1f}**" for m in IMAGE_MODELS) + " |")
    lines.append("| whole server-side p50 (Server-Timing) | "
                 + " | ".join(f"{results[m]['whole_p50_ms']:.1f}" for m in IMAGE_MODELS) + " |")
    lines.append("| ONNX Runtime alone p50 (this process) | "
                 + " | ".join(f"{results[m]['ort_alone_p50_ms']:.1f}" for m in IMAGE_MODELS) + " |")
    for key, row in (("event_loop_ms", "event loop's thread"), ("django_threads_ms", "Django's threads"),
                     ("worker_ms", "whole worker")):
        lines.append(f"| worker CPU, unsampled (/proc): {row} | "
                     + " | ".join(f"{results[m]['cpu'][key]:.1f}" for m in IMAGE_MODELS) + " |")
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--requests", type=int, default=40)
    options.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    options.add_argument("--core", type=int, default=1, help="the core the server is pinned to")
    options.add_argument("--via", choices=VIAS, default="api", help="API uploads, or the page form's")
    args = options.parse_args()
    results = run(args.requests, args.rate, args.core, args.via)
    section = "request-profile" if args.via == "api" else "request-profile-page"
    publish(render(results, command_line(options, args), args.via), section, args.write)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
