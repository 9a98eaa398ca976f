"""Where a worker's first form answer after a spin-down goes: CPU seconds of each start-up step.

    .venv/bin/python -m bench.cold_start [--runs 5] [--write]

On the free instance every CPU second of start-up is ten seconds of the first visitor's
wait, so this measures the steps in the order a fresh worker takes them, each as the CPU
time of one fresh process of the runtime environment (.venv) on a full core, median of
--runs processes: the interpreter with gunicorn and the ASGI bridge (what answers
/health/), Django and the site set up (predictors.server.startup.load_site), the URL
configuration and views the first request imports, the diabetes model loaded (libxgboost
through its C API: no NumPy, SciPy or xgboost package), and one form answered through the
services and recorded; a final line says which of those libraries the process holds by then. The last column is that step at the free instance's tenth of a CPU.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.harness import DIABETES, ROOT, RUNTIME_PYTHON
from bench.report import command_line, header, parser, publish

# Runs in the runtime environment, a step at a time; prints one JSON line of CPU seconds.
PROBE = r"""
import json, os, sys, time
clock = time.process_time
marks = {"interpreter (Python started)": clock()}
import gunicorn.app.base, gunicorn.workers.gasgi
from predictors.server import startup
marks["gunicorn and the ASGI bridge"] = clock()
served = startup.load_site()
marks["Django and the site set up"] = clock()
from django.urls import resolve
resolve("/predict/diabetes/")
marks["URL configuration and views"] = clock()
from predictors.serving.registry import get_loader
get_loader().get("diabetes")
marks["diabetes model loaded (libxgboost)"] = clock()
from django.contrib.auth import get_user_model
from predictors import services
user = get_user_model().objects.create(username="cold-start")
services.predict(user, [services.TabularRequest("diabetes", json.loads(sys.argv[1]))], source="api")
marks["one form answered and recorded"] = clock()
heavy = [m for m in ("numpy", "scipy", "xgboost") if m in sys.modules]
steps, last = {}, 0.0
for name, at in marks.items():
    steps[name] = at - last
    last = at
print(json.dumps({"steps": steps, "imported": heavy}))
"""


def one_run(workdir: Path) -> dict:
    database = workdir / "cold.sqlite3"
    database.unlink(missing_ok=True)
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "cold-start-" + "x" * 40, "DEBUG": "0", "HTTPS_ONLY": "0",
           "ALLOWED_HOSTS": "127.0.0.1", "DATABASE_URL": f"sqlite:///{database}", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "HealthOracle.settings", "WARM_MODELS": ""}
    subprocess.run([str(RUNTIME_PYTHON), "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run([str(RUNTIME_PYTHON), "-c", PROBE, json.dumps(DIABETES)], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(runs: int) -> tuple[dict[str, float], list[str]]:
    """The median CPU seconds of each step, and the model libraries the first form answer imported."""
    with tempfile.TemporaryDirectory(prefix="healthoracle-cold-") as workdir:
        samples = [one_run(Path(workdir)) for _ in range(runs)]
    steps = {step: round(statistics.median(sample["steps"][step] for sample in samples), 3)
             for step in samples[0]["steps"]}
    return steps, sorted({name for sample in samples for name in sample["imported"]})


def render(steps: dict[str, float], imported: list[str], runs: int, command: str) -> str:
    total = sum(steps.values())
    lines = [f"{header(command)}.", "",
             f"CPU seconds of each step of a fresh worker's start-up, in the order it takes them (median of {runs} "
             "processes, one full core); at the free instance's 0.1 CPU each is ten times as long:", "",
             "| step | CPU s | share | at 0.1 CPU, s |", "|---|---|---|---|"]
    for step, seconds in steps.items():
        lines.append(f"| {step} | {seconds:.3f} | {seconds / total:.0%} | {seconds * 10:.1f} |")
    lines.append(f"| **all, to the first form answer** | **{total:.3f}** | | **{total * 10:.1f}** |")
    lines += ["", "Model libraries imported by then: " + (", ".join(imported) if imported else "none of NumPy, "
              "SciPy or the xgboost package") + "."]
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--runs", type=int, default=5)
    args = options.parse_args()
    steps, imported = run(args.runs)
    publish(render(steps, imported, args.runs, command_line(options, args)), "cold-start", args.write)
    print(json.dumps({"steps": steps, "imported": imported}))


if __name__ == "__main__":
    main()
