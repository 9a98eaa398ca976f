"""The layout is the architecture: image code imports no Django, the web process no training, no cycles.

The contracts are in .importlinter; a new module falls under them by where it is put.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_image_code_imports_without_django_in_a_fresh_interpreter():
    """What training runs: the whole image package, with Django nowhere in the process."""
    code = ("import sys, pkgutil, importlib, predictors.images as p\n"
            "[importlib.import_module(f'predictors.images.{m.name}') for m in pkgutil.iter_modules(p.__path__)]\n"
            "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
