"""The commands a newcomer types (bin/manage, bin/serve's and bin/test's checks before they install
anything), run as typed in subprocesses, on a scratch copy of the checkout shaped like a fresh clone.

bin/serve end to end is tests/server/test_serve.py.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .databases import pass_database_url, scratch_database
from .support import MODELS, ROOT

SUPPORTED = (ROOT / ".python-version").read_text().strip()


def shell_env(**extra: str) -> dict[str, str]:
    """What a person's shell has, not this test process's Django settings (tests/settings.py
    exports a SECRET_KEY and HTTPS_ONLY): PATH, HOME and pip's configuration."""
    env = {name: value for name, value in os.environ.items() if name.startswith("PIP_") or name in ("PATH", "HOME")}
    return {**env, **extra}


def fresh_clone(tmp_path: Path, *, runtime: bool) -> Path:
    """The checkout as `git clone` leaves it (no var/, no secret key), the commands copied and
    the code linked; with runtime, its .venv linked to this checkout's."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copytree(ROOT / "bin", checkout / "bin")
    for name in ("manage.py", ".python-version", "requirements.txt"):
        shutil.copy2(ROOT / name, checkout / name)
    for name in ("HealthOracle", "predictors", "templates", "static", *([".venv"] if runtime else [])):
        (checkout / name).symlink_to(ROOT / name)
    return checkout


def run(command: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    # A session of its own: no terminal, as in CI, so changepassword reads its answers from stdin.
    return subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def interpreter(tmp_path: Path, version: str) -> Path:
    """An interpreter that answers the version check as a Python of that version does (this
    machine need not have one installed); it could never install anything."""
    path = tmp_path / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def own_database(tmp_path) -> Iterator[str]:
    """A database of this test's own (it creates the demo clinician, as bin/serve's test does):
    a scratch database on this pass's PostgreSQL server, else a SQLite file."""
    server = pass_database_url()
    if server is None:
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    with scratch_database(server, prefix="healthoracle_bin") as url:
        yield url


def test_manage_runs_the_readme_commands_as_typed_on_a_fresh_clone(tmp_path, own_database):
    checkout = fresh_clone(tmp_path, runtime=True)
    env = shell_env(DATABASE_URL=own_database)
    manage = str(checkout / "bin" / "manage")
    elsewhere = tmp_path  # not the checkout: bin/manage finds its environment from any directory

    checked = run([manage, "check_models"], elsewhere, env)
    assert checked.returncode == 0, checked.stderr
    assert all(re.search(rf"^{name} +ok$", checked.stdout, re.M) for name in MODELS), checked.stdout
    assert len((checkout / "var" / "secret_key").read_text().strip()) > 40  # made once, as bin/serve makes it

    usage = run([manage, "apitoken", "--help"], elsewhere, env)
    assert usage.returncode == 0 and "usage: manage.py apitoken" in usage.stdout, usage.stderr

    assert run([manage, "migrate", "--noinput", "-v0"], elsewhere, env).returncode == 0
    assert run([manage, "demo_user"], elsewhere, env).returncode == 0
    # bin/serve's second start runs demo_user again, and says how to reset the password: that must work as typed.
    again = run([manage, "demo_user"], elsewhere, env)
    suggested = re.search(r"`(bin/manage changepassword demo)`", again.stdout)
    assert suggested, again.stdout
    changed = run(["bash", "-c", suggested.group(1)], checkout, env, stdin="a long new passphrase\n" * 2)
    assert changed.returncode == 0 and "Password changed successfully for user 'demo'" in changed.stdout, \
        changed.stdout + changed.stderr


def test_manage_without_its_environment_says_which_command_builds_it(tmp_path):
    checkout = fresh_clone(tmp_path, runtime=False)
    result = run([str(checkout / "bin" / "manage"), "check_models"], checkout, shell_env())
    assert result.returncode == 1
    assert result.stderr == f"{checkout}/.venv has no Python yet: bin/serve builds .venv, bin/test builds .venv-dev.\n"
    training = run([str(checkout / "bin" / "manage"), "train_models"], checkout, shell_env(VENV=".venv-dev"))
    assert training.returncode == 1 and "bin/test builds .venv-dev" in training.stderr


@pytest.mark.parametrize("command", ["serve", "test"])
def test_an_unsupported_python_stops_in_one_line_naming_3_11_before_installing(tmp_path, command):
    checkout = fresh_clone(tmp_path, runtime=False)
    old = interpreter(tmp_path, "3.10")
    result = run([f"bin/{command}"], checkout, shell_env(PYTHON=str(old)))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"HealthOracle needs Python {SUPPORTED}, and {old} is Python 3.10: install Python "
                             f"{SUPPORTED} and point PYTHON at it, e.g. PYTHON=/path/to/python{SUPPORTED} "
                             f"bin/{command}\n")
    missing = run([f"bin/{command}"], checkout, shell_env(PYTHON="/nonexistent/python3"))
    assert missing.returncode == 1 and "/nonexistent/python3 is not a working Python" in missing.stderr
    assert not (checkout / ".venv").exists() and not (checkout / ".venv-dev").exists()


def test_serve_on_a_busy_port_says_so_at_once_and_how_to_pick_another(tmp_path):
    checkout = fresh_clone(tmp_path, runtime=False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(["bin/serve"], checkout, shell_env(PYTHON=sys.executable, PORT=str(port)), timeout=30)
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert f"PORT={port + 1} bin/serve" in result.stderr
    assert not (checkout / ".venv").exists()  # stopped before installing anything
    typo = run(["bin/serve"], checkout, shell_env(PYTHON=sys.executable, PORT="80o0"))
    assert typo.returncode == 1 and typo.stderr == "PORT=80o0 is not a port number: e.g. PORT=8001 bin/serve\n"


def ensure_venv(directory: Path) -> subprocess.CompletedProcess:
    """What bin/serve and bin/test run for .venv and .venv-dev, on a scratch directory."""
    script = 'source "$1/bin/lib/local.sh" && require_python && ensure_venv "$2"'
    return run(["bash", "-c", script, "ensure_venv", str(ROOT), str(directory)], ROOT, shell_env(PYTHON=sys.executable))


def venv_python_version(directory: Path) -> str:
    check = "import sys, pip; print('%d.%d' % sys.version_info[:2])"
    result = subprocess.run([directory / "bin" / "python", "-c", check], capture_output=True, text=True)
    return result.stdout.strip()


def test_a_venv_of_another_python_or_a_broken_one_is_rebuilt_and_a_sound_one_reused(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy2(interpreter(tmp_path, "3.10"), venv / "bin" / "python")  # left by a run with Python 3.10
    rebuilt = ensure_venv(venv)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stderr == f"Rebuilding {venv}: it has Python 3.10, not Python {SUPPORTED} with pip.\n"
    assert venv_python_version(venv) == SUPPORTED

    (venv / "kept").touch()
    reused = ensure_venv(venv)
    assert reused.returncode == 0 and reused.stderr == "" and (venv / "kept").exists()

    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(tmp_path / "uninstalled" / "python3.11")  # its interpreter was removed
    again = ensure_venv(venv)
    assert again.returncode == 0 and "it has no working Python" in again.stderr
    assert venv_python_version(venv) == SUPPORTED and not (venv / "kept").exists()


def test_a_broken_venv_behind_a_link_is_reported_never_rebuilt_through_it(tmp_path):
    """A worktree links another checkout's environments: rebuilding through the link would wipe theirs."""
    shared = tmp_path / "shared-venv"
    (shared / "bin").mkdir(parents=True)
    shutil.copy2(interpreter(tmp_path, "3.10"), shared / "bin" / "python")
    link = tmp_path / ".venv"
    link.symlink_to(shared)
    result = ensure_venv(link)
    assert result.returncode == 1
    assert result.stderr == (f"{link} links to {shared}, which has Python 3.10: "
                             "repair or remove that link, then run again.\n")
    assert (shared / "bin" / "python").read_text() == "#!/bin/sh\necho 3.10\n"
