"""Shared fixtures: tiny real model artifacts, clinicians, tokens, runtime environment."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from .databases import pass_database_url, scratch_database

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
TEST_ARTIFACTS = ROOT / "var" / "test-artifacts"

# The libraries whose output lands in the quick artifacts: training (torch, torchvision,
# scikit-learn, xgboost), export (onnx, onnxruntime's quantizer) and the image pipeline.
# Each maps to the distributions that provide it (requirements.txt pins xgboost-cpu).
ARTIFACT_LIBRARIES = {"torch": ("torch",), "torchvision": ("torchvision",), "onnx": ("onnx",),
                      "onnxruntime": ("onnxruntime",), "xgboost": ("xgboost", "xgboost-cpu"),
                      "scikit-learn": ("scikit-learn",), "numpy": ("numpy",), "pillow": ("pillow",)}


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata so nothing heavy is imported."""
    versions = {}
    for library, distributions in ARTIFACT_LIBRARIES.items():
        found = []
        for distribution in distributions:
            try:
                found.append(f"{distribution}=={metadata.version(distribution)}")
            except metadata.PackageNotFoundError:
                continue
        versions[library] = ",".join(found) or "absent"
    return versions


def training_sources() -> list[Path]:
    """Every project module `train_models` can import, found by following its imports from the
    files themselves, so a module that moves or is added is never silently left out."""
    seen: set[Path] = set()
    pending = [ROOT / "predictors" / "management" / "commands" / "train_models.py"]
    while pending:
        path = pending.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        package = path.relative_to(ROOT).with_suffix("").parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = list(package[:len(package) - node.level + 1]) if node.level else []
                module = base + (node.module.split(".") if node.module else [])
                names = [module + [alias.name] for alias in node.names] + [module]
            elif isinstance(node, ast.Import):
                names = [alias.name.split(".") for alias in node.names]
            else:
                continue
            for parts in names:
                if parts and parts[0] == "predictors":
                    target = ROOT.joinpath(*parts)
                    pending += [target.with_suffix(".py"), target / "__init__.py"]
                    pending += [ROOT.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts))]
    return sorted(seen)


def _recipe_hash() -> str:
    """Quick artifacts are rebuilt whenever the code that makes them or a library it uses changes:
    an artifact exported by another onnx or trained by another xgboost is not the one under test."""
    digest = hashlib.sha256()
    for path in training_sources():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(library_versions(), sort_keys=True).encode())
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


@pytest.fixture(scope="session")
def server_env() -> Iterator[dict[str, str]]:
    """Environment for servers tests start in another process, so they use this pass's database.

    On the SQLite pass, nothing: each server keeps its own SQLite file. On the PostgreSQL
    pass, DATABASE_URL of a scratch database on the same server, migrated by each server's
    start-up and dropped at the end of the session (see tests/databases.py).
    """
    server = pass_database_url()
    if server is None:
        yield {}
        return
    with scratch_database(server) as url:
        yield {"DATABASE_URL": url}


@pytest.fixture(autouse=True)
def close_orphaned_database_connections() -> Iterator[None]:
    """Close the connections a test opened on this thread that Django can no longer reach.

    asgiref keeps Django's per-thread connections in a context-local slot while an asyncio
    loop runs on the thread, as Playwright's sync API does during the browser test. A
    connection opened then (the test creating its user) is out of reach once the loop stops:
    pytest-django never closed it, and PostgreSQL refused to drop the test database at the
    end of the run ("1 other session"). Connections of other threads (the live server's) are
    closed by their own threads.
    """
    from django.db import connections
    from django.db.backends.signals import connection_created

    opened = []

    def remember(sender, connection, **kwargs) -> None:
        if threading.current_thread() is threading.main_thread():
            opened.append(connection)

    connection_created.connect(remember, weak=False, dispatch_uid="tests.close_orphaned_database_connections")
    try:
        yield
    finally:
        connection_created.disconnect(dispatch_uid="tests.close_orphaned_database_connections")
    reachable = {id(connections[alias]) for alias in connections}
    for connection in opened:
        if id(connection) not in reachable:
            connection.close()


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
