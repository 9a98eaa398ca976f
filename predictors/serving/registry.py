"""ModelLoader: the one place that loads, caches, evicts and reports models.

The four models are declared in predictors.catalogue. Nothing loads at import or start-up: a model
loads on its first request (or from the warm-up thread), is verified against its
manifest first, and stays cached until the memory budget needs its room, least
recently used first. A model that cannot load is reported unavailable with a reason;
the other models keep serving and the failed one is retried after a pause. An image model
whose graph runs on a model server (INFERENCE_URL) is served by the oip_image runtime; when
that server fails a request, the model is dropped and refused for the same pause, so requests
meanwhile get their 503 at once and the next load checks the server's version again.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .artifacts import CARD, MANIFEST, Artifact, ArtifactError, open_artifact
from predictors.catalogue import MODEL_SPECS, ModelSpec
from predictors.errors import HttpError, retry_after
from .memory import MB, release_freed_memory, rss_bytes
from .runtimes import REMOTE_KINDS, InferenceEndpoint, ModelRuntime, RuntimeOptions, RuntimeUnavailable, runtime_class

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
# A file as stat saw it: inode, size and mtime (ns). A new inode is a file replaced, as `publish` does.
Signature = tuple[int, int, int]


class UnknownModel(KeyError):
    pass


class ModelUnavailable(HttpError, status=503, code="model_unavailable"):
    """A model that cannot serve right now; the reason says why, for the operator.

    A client is asked to come back after the registry's retry pause (MODEL_RETRY_SECONDS),
    when the model is tried again; without one given, the process registry's.
    """

    def __init__(self, name: str, reason: str, retry_seconds: float | None = None):
        self.retry_seconds = get_loader().retry_seconds if retry_seconds is None else retry_seconds
        super().__init__(f"The {name} model is unavailable: {reason}", headers=retry_after(self.retry_seconds))
        self.name = name
        self.reason = reason


@dataclass
class LoadedModel:
    spec: ModelSpec
    artifact: Artifact
    runtime: ModelRuntime
    cost_bytes: int
    load_seconds: float
    file_signature: Signature | None = None  # the model file's _signature when it loaded
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    uses: int = 0
    # Told when the runtime cannot answer; returns how long the model is refused for it.
    on_failure: Callable[["LoadedModel", str], float] = lambda model, reason: 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.artifact.version

    @property
    def labels(self) -> list[str]:
        return self.artifact.labels

    def predict(self, features: "np.ndarray") -> Any:
        self.last_used = time.time()
        self.uses += 1
        try:
            return self.runtime.predict(features)
        except RuntimeUnavailable as exc:
            raise ModelUnavailable(self.name, str(exc), self.on_failure(self, str(exc))) from exc


@dataclass
class _History:
    loads: int = 0
    unloads: int = 0
    error: str | None = None
    failed_at: float | None = None  # monotonic
    last_cost_bytes: int | None = None
    last_load_seconds: float | None = None


class ModelLoader:
    def __init__(self, specs: tuple[ModelSpec, ...], artifacts_dir: Path, budget_bytes: int,
                 retry_seconds: float, options: RuntimeOptions, runtime_overrides: dict[str, str] | None = None):
        self.specs = {s.name: s for s in specs}
        self.artifacts_dir = Path(artifacts_dir)
        self.budget_bytes = budget_bytes
        self.retry_seconds = retry_seconds
        self.options = options
        self.runtime_overrides = dict(runtime_overrides or {})
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # least recently used first
        self._history = {name: _History() for name in self.specs}
        self._verified: dict[str, _Verified] = {}  # card(): the last verified artifact of each model
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()  # one load at a time: RSS deltas stay attributable

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownModel(name) from None

    def get(self, name: str) -> LoadedModel:
        """The loaded model, loading it first if needed; raises ModelUnavailable."""
        self.spec(name)
        cached = self._cached(name)
        if cached:
            return cached
        with self._load_lock:
            cached = self._cached(name)
            if cached:
                return cached
            return self._load(name)

    def _cached(self, name: str) -> LoadedModel | None:
        with self._lock:
            model = self._loaded.get(name)
            if model is not None and _signature(model.artifact.model_path) != model.file_signature:
                # Replaced, corrupted or deleted on disk: drop it and let the load path verify
                # whatever is there now (a new import serves at once, a broken file answers 503).
                log.warning("model %s changed on disk; reloading it", name)
                self._loaded.pop(name)
                self._history[name].unloads += 1
                model = None
            if model is not None:
                self._loaded.move_to_end(name)
                return model
            history = self._history[name]
            if history.failed_at is not None and time.monotonic() - history.failed_at < self.retry_seconds:
                raise ModelUnavailable(name, history.error or "failed to load", self.retry_seconds)
        return None

    def _load(self, name: str) -> LoadedModel:
        spec = self.specs[name]
        started = time.monotonic()
        try:
            artifact = open_artifact(name, self.artifacts_dir / name)
            if artifact.kind != spec.kind:
                raise ArtifactError(f"the card says kind {artifact.kind!r}, this endpoint serves {spec.kind!r}")
            estimate = self._history[name].last_cost_bytes or int(artifact.model_path.stat().st_size * 1.3)
            self._make_room(estimate, keep=name)
            rss_before = rss_bytes()
            kind = REMOTE_KINDS[spec.kind] if name in self.options.endpoints else spec.kind
            runtime = runtime_class(kind, self.runtime_overrides).load(artifact, self.options)
        except Exception as exc:  # any failure must stay this model's problem, never the worker's
            explained = isinstance(exc, (ArtifactError, RuntimeUnavailable))
            reason = str(exc) if explained else f"{type(exc).__name__}: {exc}"
            self._record_failure(name, reason)
            log.error("model %s failed to load: %s", name, reason, exc_info=not explained)
            raise ModelUnavailable(name, reason, self.retry_seconds) from exc
        rss_after = rss_bytes()
        seconds = time.monotonic() - started
        model = LoadedModel(spec=spec, artifact=artifact, runtime=runtime,
                            cost_bytes=max(rss_after - rss_before, runtime.size_bytes), load_seconds=seconds,
                            file_signature=_signature(artifact.model_path),
                            on_failure=self._runtime_failed)
        with self._lock:
            self._loaded[name] = model
            history = self._history[name]
            history.loads += 1
            history.error = history.failed_at = None
            history.last_cost_bytes, history.last_load_seconds = model.cost_bytes, seconds
        log.info("loaded model %s %s in %.2fs: RSS %.0f -> %.0f MB (cost %.0f MB)", name, artifact.version,
                 seconds, rss_before / MB, rss_after / MB, model.cost_bytes / MB)
        self._make_room(0, keep=name)
        return model

    def _record_failure(self, name: str, reason: str) -> None:
        with self._lock:
            history = self._history[name]
            history.error, history.failed_at = reason, time.monotonic()

    def _runtime_failed(self, model: LoadedModel, reason: str) -> float:
        """A loaded model's runtime could not answer (its model server away): drop it, unless a
        newer load has replaced it meanwhile, and refuse the model for the retry pause rather than
        let every request wait out the server's timeout; the pause is returned."""
        log.error("model %s could not answer: %s", model.name, reason)
        with self._lock:
            if self._loaded.get(model.name) is model:
                del self._loaded[model.name]
                self._history[model.name].unloads += 1
        self._record_failure(model.name, reason)
        return self.retry_seconds

    def endpoint_readiness(self, timeout: float) -> dict[str, str]:
        """For each model served by a model server, whether that server has it ready ("ok" or why
        not), each asked within `timeout` seconds; loads nothing."""
        if not self.options.endpoints:
            return {}
        from .runtimes import oip_image

        return {name: oip_image.ready(endpoint, name, timeout) for name, endpoint in self.options.endpoints.items()}

    def _make_room(self, incoming: int, keep: str) -> None:
        """Evict least recently used models until the budget fits the incoming one."""
        while True:
            with self._lock:
                resident = sum(m.cost_bytes for m in self._loaded.values())
                if resident + incoming <= self.budget_bytes:
                    return
                victims = [n for n in self._loaded if n != keep]
                if not victims:
                    log.warning("model %s alone needs %.0f MB of a %.0f MB budget", keep,
                                (resident + incoming) / MB, self.budget_bytes / MB)
                    return
            self.unload(victims[0], reason="memory budget")

    def unload(self, name: str, reason: str = "requested") -> bool:
        with self._lock:
            model = self._loaded.pop(name, None)
            if model is None:
                return False
            self._history[name].unloads += 1
        rss_before = rss_bytes()
        del model
        release_freed_memory()
        log.info("unloaded model %s (%s): RSS %.0f -> %.0f MB", name, reason, rss_before / MB, rss_bytes() / MB)
        return True

    def unload_all(self) -> None:
        for name in list(self._loaded):
            self.unload(name)

    def check_artifacts(self) -> dict[str, str | None]:
        """Verify every artifact on disk against its manifest without loading it."""
        problems: dict[str, str | None] = {}
        for name, spec in self.specs.items():
            try:
                artifact = open_artifact(name, self.artifacts_dir / name)
                problems[name] = None if artifact.kind == spec.kind else f"card kind {artifact.kind!r} is wrong"
            except ArtifactError as exc:
                problems[name] = str(exc)
        return problems

    def card(self, name: str) -> dict[str, Any]:
        """The verified card of a model, loaded or not: the history and the dashboard quote every listed
        result's card, so a model not loaded keeps its last verified artifact here and opens it again
        (reading and checking the manifest and card) only once a file of it has changed on disk."""
        self.spec(name)
        with self._lock:
            model = self._loaded.get(name)
            verified = self._verified.get(name)
        if model is not None:
            return model.artifact.card
        if verified is not None and verified.signature is not None \
                and _files_signature(verified.artifact) == verified.signature:
            return verified.artifact.card
        manifest_before = _signature(self.artifacts_dir / name / MANIFEST)
        try:
            artifact = open_artifact(name, self.artifacts_dir / name)
        except ArtifactError as exc:
            raise ModelUnavailable(name, str(exc), self.retry_seconds) from exc
        signature = _files_signature(artifact)
        # Kept only if the artifact was not published again while it was being verified: the
        # signature must be of the files that were checked.
        if signature is not None and manifest_before is not None and signature[0] == manifest_before:
            with self._lock:
                self._verified[name] = _Verified(artifact, signature)
        return artifact.card

    def status(self) -> dict[str, Any]:
        """What each model is doing, for /status/, /metrics and the dashboard; loads nothing."""
        now = time.monotonic()
        models = []
        with self._lock:
            for name, spec in self.specs.items():
                model = self._loaded.get(name)
                history = self._history[name]
                if model is not None:
                    state = "loaded"
                elif history.failed_at is not None:
                    state = "unavailable"
                else:
                    state = "not_loaded"
                models.append({
                    "name": name, "title": spec.title, "kind": spec.kind, "state": state,
                    "served_by": self.options.endpoints[name].url if name in self.options.endpoints else "this process",
                    "version": model.version if model else self._card_version(name),
                    "cost_mb": round(model.cost_bytes / MB, 1) if model else None,
                    "size_mb": round(model.runtime.size_bytes / MB, 1) if model else None,
                    "load_seconds": round(model.load_seconds, 3) if model else history.last_load_seconds,
                    "loaded_at": model.loaded_at if model else None,
                    "last_used": model.last_used if model else None,
                    "uses": model.uses if model else 0,
                    "loads": history.loads, "unloads": history.unloads,
                    "error": history.error,
                    "retry_in_seconds": (max(0.0, round(self.retry_seconds - (now - history.failed_at), 1))
                                         if history.failed_at is not None else None),
                })
            resident = sum(m.cost_bytes for m in self._loaded.values())
        return {"models": models, "rss_mb": round(rss_bytes() / MB, 1),
                "resident_models_mb": round(resident / MB, 1), "budget_mb": round(self.budget_bytes / MB, 1)}

    def _card_version(self, name: str) -> str | None:
        try:
            return str(json.loads((self.artifacts_dir / name / CARD).read_text())["version"])
        except (OSError, ValueError, KeyError):
            return None


@dataclass(frozen=True)
class _Verified:
    """An artifact as open_artifact verified it, with its files' signature (_files_signature) then."""

    artifact: Artifact
    signature: tuple[Signature, ...] | None


def _files_signature(artifact: Artifact) -> tuple[Signature, ...] | None:
    """Inode, size and mtime of the manifest and of every file it covers; None if one is gone. A changed
    file, or the directory replaced by `publish`, changes it; as for the hashes (artifacts.sha256_file),
    an edit that keeps a file's size and mtime goes unseen."""
    signature = [_signature(artifact.directory / filename) for filename in (MANIFEST, *artifact.files)]
    return None if None in signature else tuple(signature)


def _signature(path: Path) -> Signature | None:
    """Inode, size and mtime, None if the file is gone: a stat per request is the price of noticing a
    replaced artifact."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


_loader: ModelLoader | None = None
_loader_lock = threading.Lock()


def get_loader() -> ModelLoader:
    """The process's registry, built from settings on first use."""
    global _loader
    if _loader is None:
        with _loader_lock:
            if _loader is None:
                from django.conf import settings

                _loader = ModelLoader(
                    MODEL_SPECS, Path(settings.MODEL_ARTIFACTS_DIR), settings.MODEL_MEMORY_BUDGET_MB * MB,
                    settings.MODEL_RETRY_SECONDS,
                    RuntimeOptions(intra_op_threads=settings.ORT_INTRA_OP_THREADS,
                                   graph_optimization=settings.ORT_GRAPH_OPTIMIZATION,
                                   endpoints={name: InferenceEndpoint(settings.INFERENCE_URL, settings.INFERENCE_TIMEOUT,
                                                                      settings.INFERENCE_TOKEN)
                                              for name in settings.INFERENCE_MODELS if settings.INFERENCE_URL}),
                    settings.MODEL_RUNTIME_OVERRIDES)
    return _loader


def reset_loader() -> None:
    """Drop the registry (and its models) so the next use rebuilds it from settings."""
    global _loader
    with _loader_lock:
        old, _loader = _loader, None
    if old is not None:
        old.unload_all()
