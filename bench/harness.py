"""Start the real site under gunicorn on loopback and talk to it over HTTP.

Standard library only, so the benchmarks run in the runtime environment (.venv) that
Render builds, and memory figures are those of the web process alone.
"""
from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
RUNTIME_PYTHON = ROOT / ".venv" / "bin" / "python"


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


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Site:
    """A gunicorn master with gunicorn_config.py, a clinician token and its own SQLite database
    (or the DATABASE_URL given in extra_env). stop() leaves nothing behind."""

    python: Path = RUNTIME_PYTHON
    artifacts: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
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
        """Migrate, issue a token and serve; a site that never becomes healthy is torn down."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("migrate", "--noinput", "-v0")
        self.token = self.manage("apitoken", f"bench-{uuid.uuid4().hex[:6]}", "--create-user").splitlines()[-1]
        gunicorn = Path(self.python).parent / "gunicorn"
        started = time.perf_counter()
        self.log_path = self.workdir / log_name
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([str(gunicorn), "--config", "gunicorn_config.py", "HealthOracle.wsgi"],
                                            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.wait_healthy(timeout=60)
        except RuntimeError:
            self.stop()
            raise
        self.started_seconds = time.perf_counter() - started
        return self

    def wait_healthy(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.request("GET", "/health/", timeout=2)
                if status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"site on port {self.port} did not become healthy in {timeout} s; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop gunicorn and its worker, and delete the working directory (its SQLite database and log)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def pss_mb(self) -> dict[str, float]:
        master = pss_kb(self.process.pid) / 1024
        workers = [pss_kb(pid) / 1024 for pid in self.workers()]
        return {"master": round(master, 1), "worker": round(sum(workers), 1), "total": round(master + sum(workers), 1)}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[int, bytes, float]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return response.status, data, time.perf_counter() - started
        finally:
            connection.close()

    def predict(self, model: str, payload: dict | tuple[str, bytes]) -> tuple[int, dict, float]:
        headers = {"Authorization": f"Token {self.token}"}
        if isinstance(payload, dict):
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        else:
            body, content_type = multipart("image", *payload)
            headers["Content-Type"] = content_type
        status, data, seconds = self.request("POST", f"/api/v1/predict/{model}", body, headers)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = {"raw": data[:200].decode(errors="replace")}
        return status, parsed, seconds


def multipart(field_name: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


DIABETES = {"pregnancies": 2, "glucose": 168, "blood_pressure": 72, "skin_thickness": None, "insulin": None,
            "bmi": 35.1, "diabetes_pedigree": 0.52, "age": 45}
HEART = {"age": 61, "sex": "male", "chest_pain_type": "asymptomatic", "resting_bp": 140, "cholesterol": 280,
         "fasting_blood_sugar_gt_120": False, "resting_ecg": "lv_hypertrophy", "max_heart_rate": 120,
         "exercise_angina": True, "st_depression": 2.0, "st_slope": "flat", "major_vessels": 2,
         "thal": "reversible_defect"}


def payloads() -> dict[str, dict | tuple[str, bytes]]:
    return {
        "diabetes": DIABETES,
        "heart": HEART,
        "retina": ("retina.jpg", (SAMPLES / "fundus" / "retina.jpg").read_bytes()),
        "ecg": ("stemi_printout.png", (SAMPLES / "ecg" / "stemi_printout.png").read_bytes()),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"
