"""predictors.server.startup: what a worker spends before its first page, on a tenth of a CPU."""
from __future__ import annotations

import json

from ..support import PRODUCTION_ENV, run_python


def test_the_site_starts_without_garbage_collection_and_collects_again_after(runtime_python, tmp_path):
    """Django's start-up objects live as long as the worker: no collection runs while they are made
    (about half a second of the first page at a tenth of a CPU), none walks them later, and the
    collector is on again for what requests make."""
    code = ("import gc, json\n"
            "from predictors.server.startup import load_site\n"
            "before = [generation['collections'] for generation in gc.get_stats()]\n"
            "load_site()\n"
            "after = [generation['collections'] for generation in gc.get_stats()]\n"
            "print(json.dumps({'collections': [b - a for a, b in zip(before, after)], 'enabled': gc.isenabled(),\n"
            "                  'frozen': gc.get_freeze_count()}))\n")
    env = {**PRODUCTION_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "WARM_MODELS": ""}
    result = run_python(runtime_python, code, env)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout.strip().splitlines()[-1])
    assert started["collections"] == [0, 0, 0]
    assert started["enabled"]
    assert started["frozen"] > 50_000  # Django's modules, classes and functions, out of every later collection
