"""The deploy files: render.yaml, gunicorn_config.py and requirements.txt fit one small instance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from django.urls import resolve

from bench.harness import Site

from .support import ROOT, run_python


def test_render_blueprint_starts_gunicorn_with_our_config_and_probes_a_routed_health_path():
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    web = next(s for s in blueprint["services"] if s["type"] == "web")
    assert "gunicorn" in web["startCommand"] and "--config gunicorn_config.py" in web["startCommand"]
    assert "requirements.txt" in web["buildCommand"] and "requirements-train" not in web["buildCommand"]
    assert resolve(web["healthCheckPath"]).url_name == "health"
    env = {e["key"]: e for e in web["envVars"]}
    assert env["SECRET_KEY"].get("generateValue") is True
    assert env["DATABASE_URL"]["fromDatabase"]["name"] == blueprint["databases"][0]["name"]
    assert env["PYTHON_VERSION"]["value"].startswith("3.11")


def test_gunicorn_config_fits_one_small_instance():
    code = ("import runpy, json; c = runpy.run_path('gunicorn_config.py')\n"
            "print(json.dumps({k: c[k] for k in ('workers','worker_class','threads','timeout','graceful_timeout',"
            "'max_requests','max_requests_jitter','preload_app','worker_tmp_dir','bind')}))")
    result = run_python(sys.executable, code, {"PATH": os.environ["PATH"], "PORT": "10000"})
    config = json.loads(result.stdout)
    # One asyncio worker: slow clients cost a coroutine; Django runs in the bridge's own thread pool.
    assert config["workers"] == 1 and config["worker_class"] == "asgi" and config["threads"] == 1
    assert config["preload_app"] is False
    # gunicorn's recycling counts probes and leaves a gap; predictors/server/recycling.py does it instead.
    assert config["max_requests"] == 0
    assert config["bind"] == "0.0.0.0:10000"
    assert config["timeout"] > config["graceful_timeout"] > 0


def test_gunicorn_config_refuses_a_typo_naming_the_variable():
    """gunicorn stops on what its config file exits with: the message must say which setting is wrong,
    in a line of its own, not at the end of a traceback."""
    code = "import runpy; runpy.run_path('gunicorn_config.py')"
    env = {"PATH": os.environ["PATH"]}
    chosen = run_python(sys.executable, code, {**env, "GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_TIMEOUT": "90"})
    assert chosen.returncode == 0, chosen.stderr
    not_a_number = run_python(sys.executable, code, {**env, "GUNICORN_TIMEOUT": "2m"})
    assert not_a_number.returncode != 0
    assert "GUNICORN_TIMEOUT='2m' is not a whole number" in not_a_number.stderr
    unknown_class = run_python(sys.executable, code, {**env, "GUNICORN_WORKER_CLASS": "uvicorn"})
    assert unknown_class.returncode != 0
    assert "GUNICORN_WORKER_CLASS='uvicorn' is not supported" in unknown_class.stderr
    assert "use asgi, gthread, gevent" in unknown_class.stderr
    # The site's variables are read by the same reader, and stop it as early.
    site_typo = run_python(sys.executable, code, {**env, "MODEL_RETRY_SECONDS": "soon"})
    assert site_typo.returncode != 0 and "MODEL_RETRY_SECONDS='soon' is not a number" in site_typo.stderr
    assert not [result for result in (not_a_number, unknown_class, site_typo) if "Traceback" in result.stderr]


def test_web_requirements_exclude_training_libraries():
    names = {line.split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert not names & {"torch", "torchvision", "scikit-learn", "xgboost"}
    assert {"django", "gunicorn", "onnxruntime", "xgboost-cpu"} <= names
    assert all("==" in line for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#"))


def test_gunicorn_config_refuses_a_port_that_is_not_a_number():
    result = run_python(sys.executable, "import runpy; runpy.run_path('gunicorn_config.py')",
                        {"PATH": os.environ["PATH"], "PORT": "80o0"})
    assert result.returncode != 0 and "PORT='80o0' is not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_wrong_setting_stops_gunicorn_in_one_line_naming_it(runtime_python, tmp_path):
    """Before a worker starts when the value does not parse; before the worker serves when it does not fit
    the others (a system check). Either way gunicorn exits, saying which variable, with no traceback."""
    gunicorn = Path(runtime_python).parent / "gunicorn"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DEBUG": "1", "GUNICORN_BIND": "127.0.0.1:0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    for wrong, said in ((({"PORT": "80o0"}), "PORT='80o0' is not a whole number"),
                        ({"MAX_REQUEST_BODY_BYTES": "10"}, "(predictors.E002) MAX_REQUEST_BODY_BYTES=10 is below")):
        stopped = subprocess.run([gunicorn, "--config", "gunicorn_config.py"], cwd=ROOT, env={**env, **wrong},
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode != 0 and said in stopped.stderr, stopped.stderr
        assert "Traceback" not in stopped.stderr, stopped.stderr


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_stopping_one_gunicorn_never_takes_another_instances_control_socket(tmp_path):
    """gunicorn's default is one control socket per user (~/.gunicorn/gunicorn.ctl), which every
    instance takes over and each deletes when it stops. Off unless an instance is given its own."""
    home = tmp_path / "home"
    home.mkdir()
    own = tmp_path / "first.ctl"
    first = Site(extra_env={"HOME": str(home), "GUNICORN_CONTROL_SOCKET": str(own)}).start()
    try:
        # At debug level gunicorn logs the control socket's fate ("disabled" or "listening at") once it is settled.
        second = Site(extra_env={"HOME": str(home), "GUNICORN_LOGLEVEL": "debug"}).start()
        try:
            assert wait_for(own.is_socket, 10), first.log_tail()
            assert wait_for(lambda: "Control socket" in second.log_tail(100_000), 10), second.log_tail()
            assert not [path for path in home.rglob("*") if path.is_socket()]  # none at the shared default
        finally:
            second.stop()
        gunicornc = Path(first.python).parent / "gunicornc"
        shown = subprocess.run([gunicornc, "-s", own, "-c", "show workers", "-j"], capture_output=True, text=True,
                               timeout=30)
        assert shown.returncode == 0 and str(first.workers()[0]) in shown.stdout, shown.stdout + shown.stderr
    finally:
        first.stop()
    assert not own.exists()
