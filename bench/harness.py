"""What every benchmark measures with: the real site under gunicorn on loopback, /health/
probed as Render probes it, the processes' memory sampled, and timed ONNX Runtime runs.

Written once so that two benchmarks that report the same thing (a probe's latency, a peak
PSS) measured it the same way. Standard library only at import, so the benchmarks run in
the runtime environment (.venv) that Render builds, and memory figures are those of the
web process alone. Run each script from the repository root as `python -m bench.<name>`.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "predictors" / "artifacts"
SAMPLES = ROOT.parent / "shared" / "samples"
RUNTIME_PYTHON = ROOT / ".venv" / "bin" / "python"
MODEL_SERVER_BIN = ROOT / ".venv-oip" / "bin"  # MLServer's environment (requirements-oip.txt), made by bin/test
MODELS = ("diabetes", "heart", "retina", "ecg")

Payload = dict | tuple[str, bytes]  # a form's JSON, or an image's (file name, bytes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pss_kb(pid: int) -> int:
    """Proportional set size of one process, in kB (shared library pages split fairly)."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


def terminate(process: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM, `grace` seconds to finish its requests, then SIGKILL."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Answer(NamedTuple):
    status: int
    data: bytes
    seconds: float  # the round trip, from sending the request to the last byte of the answer
    headers: http.client.HTTPMessage


@dataclass(frozen=True)
class PssSample:
    at: float  # time.monotonic()
    master_mb: float
    workers_mb: dict[int, float]  # by pid

    @property
    def total_mb(self) -> float:
        return self.master_mb + sum(self.workers_mb.values())


@dataclass
class Site:
    """A gunicorn master with gunicorn_config.py, a clinician token and its own SQLite database
    (or the DATABASE_URL given in extra_env). stop() leaves nothing behind.

    launch_prefix runs gunicorn through another command (the free instance's cgroups)."""

    python: Path = RUNTIME_PYTHON
    artifacts: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    launch_prefix: list[str] = field(default_factory=list)
    boot_timeout: float = 60
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="healthoracle-bench-")))
    process: subprocess.Popen | None = None
    token: str = ""
    started_seconds: float = 0.0

    @property
    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DEBUG": "0",
            "HTTPS_ONLY": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'bench.sqlite3'}",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_ACCESSLOG": "/dev/null",
            "LOG_LEVEL": "WARNING",
        }
        if self.artifacts is not None:
            env["MODEL_ARTIFACTS_DIR"] = str(self.artifacts)
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> str:
        result = subprocess.run([str(self.python), "manage.py", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def start(self, log_name: str = "gunicorn.log") -> "Site":
        """Migrate, issue a token and serve with render.yaml's start command; started_seconds is
        the time from starting gunicorn to the first /health/ 200, when Render sends traffic.
        A site that never becomes healthy is torn down."""
        self.prepare()
        started = self.launch(log_name)
        try:
            self.wait_healthy(timeout=self.boot_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.perf_counter() - started
        return self

    def prepare(self) -> None:
        """What Render's build does before the process starts: static files, migrations; and a token."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("migrate", "--noinput", "-v0")
        self.token = self.manage("apitoken", f"bench-{uuid.uuid4().hex[:6]}", "--create-user").splitlines()[-1]

    def launch(self, log_name: str = "gunicorn.log") -> float:
        """Start gunicorn with render.yaml's start command and return at once, with the moment
        (time.perf_counter()) it was started: a benchmark that sends its first request then
        measures what a visitor waking the instance waits."""
        gunicorn = Path(self.python).parent / "gunicorn"
        self.log_path = self.workdir / log_name
        started = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([*self.launch_prefix, str(gunicorn), "--config", "gunicorn_config.py"],
                                            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return started

    def wait_healthy(self, timeout: float) -> float:
        started = time.perf_counter()
        for probe in health_probes(self, every=0.05, timeout=2, seconds=timeout):
            if probe.status == 200:
                return time.perf_counter() - started
        raise RuntimeError(f"site on port {self.port} did not become healthy in {timeout} s; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop gunicorn and its worker, and delete the working directory (its SQLite database and log)."""
        terminate(self.process, grace=40)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def pss(self) -> PssSample:
        """Master and workers now; OSError or RuntimeError if one exits while it is read."""
        return PssSample(time.monotonic(), pss_kb(self.process.pid) / 1024,
                         {pid: pss_kb(pid) / 1024 for pid in self.workers()})

    def pss_mb(self) -> dict[str, float]:
        sample = self.pss()
        return {"master": round(sample.master_mb, 1), "worker": round(sum(sample.workers_mb.values()), 1),
                "total": round(sample.total_mb, 1)}

    def exchange(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 120) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return Answer(response.status, data, time.perf_counter() - started, response.headers)
        finally:
            connection.close()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[int, bytes, float]:
        status, data, seconds, _ = self.exchange(method, path, body, headers, timeout)
        return status, data, seconds

    def send_prediction(self, model: str, payload: Payload, timeout: float = 120) -> Answer:
        body, content_type = request_body(payload)
        return self.exchange("POST", f"/api/v1/predict/{model}", body,
                             {"Authorization": f"Token {self.token}", "Content-Type": content_type}, timeout)

    def predict(self, model: str, payload: Payload) -> tuple[int, dict, float]:
        answer = self.send_prediction(model, payload)
        try:
            parsed = json.loads(answer.data)
        except ValueError:
            parsed = {"raw": answer.data[:200].decode(errors="replace")}
        return answer.status, parsed, answer.seconds

    def predict_ok(self, model: str, payload: Payload) -> tuple[dict, float]:
        """A prediction the benchmark needs answered: figures taken after a failed one would mislead."""
        status, body, seconds = self.predict(model, payload)
        if status != 200:
            raise RuntimeError(f"{model}: HTTP {status} {body}")
        return body, seconds


@dataclass
class ModelServer:
    """MLServer on loopback serving what `manage.py write_inference_repository` writes from
    `artifacts`: the engine a site with INFERENCE_URL sends its image tensors to. One worker in
    MLServer's own process (MLSERVER_PARALLEL_WORKERS=0); stop() leaves nothing behind."""

    artifacts: Path = ARTIFACTS
    launch_prefix: list[str] = field(default_factory=list)
    boot_timeout: float = 120
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="healthoracle-oip-")))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, models: tuple[str, ...] = ("retina", "ecg")) -> "ModelServer":
        mlserver = MODEL_SERVER_BIN / "mlserver"
        if not mlserver.exists():
            raise RuntimeError(f"{mlserver} is missing: bin/test makes .venv-oip from requirements-oip.txt")
        repository = self.workdir / "repository"
        subprocess.run([str(RUNTIME_PYTHON), "manage.py", "write_inference_repository", str(repository),
                        "--models", ",".join(models)], cwd=ROOT, check=True, capture_output=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DEBUG": "1",
                            "MODEL_ARTIFACTS_DIR": str(self.artifacts)})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MLSERVER_HOST": "127.0.0.1",
               "MLSERVER_HTTP_PORT": str(self.port), "MLSERVER_GRPC_PORT": str(free_port()),
               "MLSERVER_METRICS_PORT": str(free_port()), "MLSERVER_PARALLEL_WORKERS": "0"}
        self.log_path = self.workdir / "mlserver.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([*self.launch_prefix, str(mlserver), "start", str(repository / "mlserver")],
                                            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.boot_timeout
        waiting = list(models)
        while waiting:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"MLServer did not get {', '.join(waiting)} ready; log:\n{log_text}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", f"/v2/models/{waiting[0]}/ready")
                if connection.getresponse().status == 200:
                    waiting.pop(0)
                    continue
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        terminate(self.process, grace=30)
        shutil.rmtree(self.workdir, ignore_errors=True)


def multipart(field_name: str, filename: str, content: bytes,
              fields: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart form: `fields` as text, then one file (a file input
    left empty is sent as a browser sends it, with an empty file name and no bytes)."""
    boundary = uuid.uuid4().hex
    texts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    for name, value in (fields or {}).items())
    head = (f"{texts}--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request_body(payload: Payload) -> tuple[bytes, str]:
    """(body, Content-Type) of a prediction request: a form as JSON, an image as the upload field."""
    if isinstance(payload, dict):
        return json.dumps(payload).encode(), "application/json"
    return multipart("image", *payload)


DIABETES = {"pregnancies": 2, "glucose": 168, "blood_pressure": 72, "skin_thickness": None, "insulin": None,
            "bmi": 35.1, "diabetes_pedigree": 0.52, "age": 45}
HEART = {"age": 61, "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": 140, "cholesterol": 280,
         "fasting_blood_sugar_gt_120": False, "resting_ecg": "lv_hypertrophy", "max_heart_rate": 120,
         "exercise_angina": True, "st_depression": 2.0, "st_slope": "flat", "major_vessels": 2,
         "thal": "reversible_defect"}


def payloads() -> dict[str, Payload]:
    """One request per model. The ECG upload is a printout from the model's own machine (the first
    of its held-out test photos, read in place): another machine's is refused as outside the
    domain the model was validated on, which would measure the refusal, not the model."""
    ecg_test = json.loads((ARTIFACTS / "ecg" / "card.json").read_text())["data"]["test_files"][0]
    return {
        "diabetes": DIABETES,
        "heart": HEART,
        "retina": ("retina.jpg", (SAMPLES / "fundus" / "retina.jpg").read_bytes()),
        "ecg": (Path(ecg_test).name, (ROOT.parent / "shared" / "data" / ecg_test).read_bytes()),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ticks(every: float, stop: threading.Event | None = None, seconds: float | None = None) -> Iterator[None]:
    """A beat every `every` seconds, counted from the start of the one before (at once after one
    that overran), until `stop` is set or `seconds` have passed: the pace of a prober or sampler
    does not drift with how long each probe takes."""
    stop = stop or threading.Event()
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        yield
        stop.wait(max(0.0, every - (time.monotonic() - started)))


class Probe(NamedTuple):
    status: int | None  # None: no answer
    seconds: float
    error: str | None = None  # the exception's name where there was no answer


def health_probes(site: Site, *, every: float, timeout: float, stop: threading.Event | None = None,
                  seconds: float | None = None) -> Iterator[Probe]:
    """/health/ probed every `every` seconds, as Render probes it, each given up after `timeout`."""
    for _ in ticks(every, stop, seconds):
        started = time.perf_counter()
        try:
            status, _, elapsed = site.request("GET", "/health/", timeout=timeout)
            probe = Probe(status, elapsed)
        except (OSError, http.client.HTTPException) as exc:
            probe = Probe(None, time.perf_counter() - started, type(exc).__name__)
        yield probe


def run_together(targets: list[Callable[[], None]], stop: threading.Event, seconds: float,
                 join_timeout: float) -> None:
    """Each target in a thread of its own for `seconds`, then `stop` set and each given
    `join_timeout` to notice it: the load of the free instance's bursts and of the soak."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=join_timeout)


class PssSampler:
    """The site's PSS, master and workers, every `every` seconds while the `with` block runs.

    A moment at which a process exits between being listed and being read is skipped, so
    no sample's total leaves a process out."""

    def __init__(self, site: Site, every: float):
        self.site, self.every = site, every
        self.samples: list[PssSample] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in ticks(self.every, self._done):
            try:
                self.samples.append(self.site.pss())
            except (OSError, RuntimeError):
                pass

    @property
    def peak_mb(self) -> float:
        return max((sample.total_mb for sample in self.samples), default=0.0)

    def __enter__(self) -> "PssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def image_input(height: int, width: int) -> "np.ndarray":
    """One image-sized input batch, the same in every run (seed 0)."""
    import numpy as np

    return np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(np.float32)


def timed_runs_ms(run: Callable[[], Any], runs: int, warm_up: bool = True) -> list[float]:
    """`run` `runs` times, each timed alone, in ms; first once untimed where the first call
    costs more than the rest (ONNX Runtime plans and allocates on its first run)."""
    if warm_up:
        run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times
