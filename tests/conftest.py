"""Shared fixtures: tiny real model artifacts, clinicians, tokens, scripted models, real servers,
the runtime environment. Helpers that are not fixtures are in support.py."""
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
from contextlib import nullcontext
from importlib import metadata
from pathlib import Path

import pytest

# Before the import below, so support's assertions report what they compared, as a test's do.
pytest.register_assert_rewrite("tests.support")

from .databases import pass_database_url, scratch_database  # noqa: E402
from .support import (CALIBRATION, DECISION, ECG_DECISION, ROOT, STRICT_LOGIN_LIMIT, STRICT_PASSWORD,  # noqa: E402
                      STRICT_READ_TIMEOUT, TEST_ARTIFACTS, ScriptedImage, ScriptedTabular, ample_test_set,
                      rewrite_card)

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


@pytest.fixture
def scripted(artifacts, settings, monkeypatch):
    """The quick artifacts served by scripted runtimes: each test sets what the models answer."""
    settings.MODEL_RUNTIME_OVERRIDES = {
        "xgboost_tabular": f"{ScriptedTabular.__module__}.{ScriptedTabular.__qualname__}",
        "onnx_image": f"{ScriptedImage.__module__}.{ScriptedImage.__qualname__}"}
    return monkeypatch


@pytest.fixture
def decided(scripted, artifacts):
    """Scripted models, and retina and ECG cards with the decision rules support.DECISION and
    support.ECG_DECISION state, a calibration that bears out the scripted answers (support.CALIBRATION), and
    enough test cases of every class (support.ample_test_set)."""
    for name, decision in (("retina", DECISION), ("ecg", ECG_DECISION)):
        rewrite_card(artifacts, name, lambda card: (card.update(decision=decision, calibration=CALIBRATION),
                                                    ample_test_set(card)))
    return scripted


@pytest.fixture
def quick_site(quick_artifacts, tmp_path, runtime_python, server_env):
    """A real server (gunicorn_config.py, the runtime environment) on a private copy of the quick artifacts."""
    from bench.harness import Site

    artifacts = tmp_path / "artifacts"
    shutil.copytree(quick_artifacts, artifacts, ignore=shutil.ignore_patterns("complete"))
    # INFO logs carry the registry's "loaded model" lines, which say when a load finished.
    running = Site(artifacts=artifacts, extra_env={"MODEL_RETRY_SECONDS": "0", "LOG_LEVEL": "INFO",
                                                   **server_env}).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def strict_site() -> Iterator:
    """One real server for the session's hostile-traffic tests, each bounded to a handful of
    requests and seconds of slow clients: few log-in attempts, a short read timeout, a clinician
    dr_ada. SQLite in the site's own directory, or on the PostgreSQL pass a scratch database of
    its own on that server."""
    from bench.harness import Site, multipart
    from bench.hostile import flat_png

    env = {"LOGIN_FAILURE_LIMIT": str(STRICT_LOGIN_LIMIT), "REQUEST_READ_TIMEOUT": str(STRICT_READ_TIMEOUT),
           "TRUSTED_PROXY_COUNT": "1", "GUNICORN_MAX_REQUESTS": "0"}
    server = pass_database_url()
    with scratch_database(server, prefix="healthoracle_hostile") if server else nullcontext() as url:
        if url:
            env["DATABASE_URL"] = url
        running = Site(extra_env=env).start()
        try:
            running.manage("shell", "-c", "from django.contrib.auth.models import User; "
                           f"User.objects.create_superuser('dr_ada', 'ada@example.org', {STRICT_PASSWORD!r})")
            # Resting means with the imaging code loaded, as after any first upload.
            body, content_type = multipart("image", "small.png", flat_png(64, 64, 8, 2, 3))
            running.request("POST", "/api/v1/predict/retina", body,
                            {"Authorization": f"Token {running.token}", "Content-Type": content_type})
            yield running
        finally:
            running.stop()
