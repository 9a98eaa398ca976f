"""predictors.serving.warmup: models loaded in the background while the worker already answers."""
from __future__ import annotations

import threading

from predictors.serving.registry import get_loader


def test_background_warmup_never_blocks(artifacts, settings, monkeypatch):
    """The caller (a worker starting) gets control back while the models are still loading."""
    from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular
    from predictors.serving.warmup import start_background_warmup

    release = threading.Event()
    real_load = XGBoostTabular.load.__func__

    def held_load(cls, artifact, options):
        assert release.wait(60), "the test never released the load"
        return real_load(cls, artifact, options)

    monkeypatch.setattr(XGBoostTabular, "load", classmethod(held_load))
    settings.WARM_MODELS = ["diabetes", "retina", "nonsense"]
    thread = start_background_warmup()  # would hang here if the warm-up ran on the caller's thread
    assert thread is not None and thread.daemon and thread.is_alive()
    assert all(m["state"] == "not_loaded" for m in get_loader().status()["models"])
    release.set()
    thread.join(timeout=120)
    states = {m["name"]: m["state"] for m in get_loader().status()["models"]}
    assert states["retina"] == "loaded" and states["diabetes"] == "loaded" and states["ecg"] == "not_loaded"
