"""The 60-second soak: mixed traffic across several worker recycles, nothing may fail."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_short_soak_survives_recycling_without_a_failed_request(quick_artifacts, runtime_python, tmp_path):
    plot = tmp_path / "soak.png"
    result = subprocess.run([sys.executable, "bench/soak.py", "--short", "--artifacts", str(quick_artifacts),
                             "--plot", str(plot)], cwd=ROOT, capture_output=True, text=True, timeout=400)
    summary = json.loads(result.stdout[result.stdout.index("{"): result.stdout.rindex("}") + 1])
    assert result.returncode == 0 and result.stdout.strip().endswith("PASS"), result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["failures"] == 0 and summary["worker_lifetimes"] >= 2
    assert summary["peak_pss_mb"] < 512
    assert not [k for k in summary["statuses"] if k.split()[-1].startswith("5")]
    assert plot.read_bytes()[:4] == b"\x89PNG"
