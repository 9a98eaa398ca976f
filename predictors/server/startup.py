"""What a worker does once it listens: import Django and the site, then warm the models.

The bridge (bridge.py) calls load_site() in a background thread, so /health/ answers
from the first moment; the settings' checks (predictors/checks.py) stop a misconfigured
worker before it serves, and recycling, admission control and the warm-up are wired here,
in one place, after Django is set up.

The garbage collector is off while they import: on a tenth of a CPU its passes over the
hundred thousand objects the imports create (modules, classes, functions, all kept for the
worker's life) cost about half a second of the first visitor's wait, and then every full
collection would walk them again. They are frozen instead (gc.freeze): left out of every
later collection, with the collector on again for what requests create.
"""
from __future__ import annotations

import gc
import os

from .bridge import CannotStart, Served, yield_to_event_loop

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "HealthOracle.settings")


def load_site() -> Served:
    """Import Django and the site, and wire the worker's recycling, admission and warm-up;
    runs in the bridge's django-setup thread, once the worker already answers /health/."""
    gc.disable()
    try:
        return _set_up_site()
    finally:
        gc.freeze()
        gc.enable()


def _set_up_site() -> Served:
    from django.core.wsgi import get_wsgi_application

    wsgi = get_wsgi_application()
    from django.conf import settings
    from django.core.checks import run_checks

    from predictors.checks import TAG

    if errors := [str(message) for message in run_checks(tags=[TAG]) if message.is_serious()]:
        raise CannotStart("\n".join(errors))

    from predictors.server.recycling import Recycler
    from predictors.server.admission import ImageAdmission
    from predictors.http import json_path
    from predictors.serving.warmup import start_background_warmup, stop_warmup

    recycler = Recycler.from_settings()

    def before_warming(timeout: float) -> None:
        yield_to_event_loop()
        recycler.predecessor_exited(timeout)

    # The models warm once the page that woke the worker is answered (bridge.py), not beside it.
    return Served(wsgi, threads=settings.SERVER_THREADS, max_body_bytes=settings.MAX_REQUEST_BODY_BYTES,
                  read_timeout=settings.REQUEST_READ_TIMEOUT, json_paths=json_path,
                  admission=ImageAdmission.from_settings(), recycler=recycler, on_ready=recycler.on_ready,
                  on_woken=lambda: start_background_warmup(after=before_warming), on_exit=stop_warmup)
