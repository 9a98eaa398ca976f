"""The 60-second soak: mixed traffic across several worker recycles, nothing may fail."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from ..support import ROOT

pytestmark = pytest.mark.slow


def run_bounded(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run in a process group of its own, so a soak that overruns is killed with its gunicorn."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the soak overran {timeout} s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_short_soak_survives_recycling_without_a_failed_request(runtime_python, server_env, tmp_path):
    """On the shipped models (soak.py's default): the 512 MB a Render instance has is a claim about
    them, and the quick test builds are a fraction of their size."""
    plot = tmp_path / "soak.png"
    command = [sys.executable, "-m", "bench.soak", "--short", "--plot", str(plot)]
    if "DATABASE_URL" in server_env:
        command += ["--database-url", server_env["DATABASE_URL"]]
    result = run_bounded(command, timeout=400)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0 and result.stdout.strip().endswith("PASS"), output
    summary = json.loads(result.stdout[result.stdout.index("{"): result.stdout.rindex("}") + 1])
    assert summary["failures"] == 0 and summary["worker_lifetimes"] >= 2
    assert summary["peak_pss_mb"] < 512
    assert not [k for k in summary["statuses"] if k.split()[-1].startswith("5")]
    assert plot.read_bytes()[:4] == b"\x89PNG"
