"""Shared fixtures: tiny real model artifacts, clinicians, tokens, runtime environment."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
TEST_ARTIFACTS = ROOT / "var" / "test-artifacts"

def _recipe_hash() -> str:
    """Quick artifacts are rebuilt whenever the code that makes them changes."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "predictors").rglob("*.py")):
        if "training" in path.parts or path.name in ("imaging.py", "artifacts.py") or "inputs" in path.parts:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def quick_artifacts() -> Path:
    """All four models trained with `train_models --quick` (about a minute, cached per recipe)."""
    target = TEST_ARTIFACTS / _recipe_hash()
    if not (target / "complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run([sys.executable, "manage.py", "train_models", "--quick", "--output", str(target)],
                       cwd=ROOT, check=True, env={**os.environ, "DEBUG": "1"})
        (target / "complete").write_text("ok\n")
    return target


@pytest.fixture
def artifacts(quick_artifacts: Path, tmp_path: Path, settings) -> Path:
    """A private copy of the quick artifacts, served by the registry for this test."""
    copy = tmp_path / "artifacts"
    shutil.copytree(quick_artifacts, copy, ignore=shutil.ignore_patterns("complete"))
    settings.MODEL_ARTIFACTS_DIR = copy
    return copy


@pytest.fixture
def clinician(django_user_model):
    return django_user_model.objects.create_user(username="dr_ada", password="correct horse battery staple")


@pytest.fixture
def logged_in(client, clinician):
    client.force_login(clinician)
    return client


@pytest.fixture
def api_token(clinician) -> str:
    from predictors.models import APIToken

    _, key = APIToken.issue(clinician, name="tests")
    return key


@pytest.fixture
def runtime_python() -> str:
    """The web runtime's interpreter (requirements.txt only), where the lean-process claims must hold."""
    candidate = ROOT / ".venv" / "bin" / "python"
    if not candidate.exists():
        pytest.fail("the runtime environment .venv is missing; bin/test creates it")
    return str(candidate)


def sample(*parts: str) -> Path:
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"missing shared sample {path}")
    return path
