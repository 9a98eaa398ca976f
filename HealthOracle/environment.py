"""Every environment variable the site and its server read, each read and parsed once, here.

settings.py and gunicorn_config.py both take their values from one Environment: a variable
gunicorn and Django share (GUNICORN_THREADS) is one value, with one default. A value that
does not parse is not raised at import, where it would be a traceback: it is kept in
`problems`, one line naming the variable, and the default stands in meanwhile.
gunicorn_config.py stops with those lines before a worker starts; Django reports them as
system-check errors (predictors/checks.py) at `manage.py check`, before any other command,
and before a worker serves. Rules between variables (a body limit against the upload
limit, the model server's settings) are checks there too.

Plain Python, standard library only: gunicorn reads it before Django is imported.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, TypeVar

T = TypeVar("T")

BASE_DIR = Path(__file__).resolve().parent.parent
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


class Environment:
    """The environment as typed values. Unset or blank, a variable takes the default given here."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self.problems: list[str] = []

        # Django, security and the database (settings.py)
        self.debug = self._boolean("DEBUG", False)
        self.secret_key = self._environ.get("SECRET_KEY", "")
        self.allowed_hosts = self._names("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
        self.render_external_hostname = self._environ.get("RENDER_EXTERNAL_HOSTNAME", "").strip()
        self.csrf_trusted_origins = self._names("CSRF_TRUSTED_ORIGINS", "")
        self.database_url = self._text("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
        self.db_conn_max_age = self._integer("DB_CONN_MAX_AGE", 600)
        self.db_connect_timeout = self._integer("DB_CONNECT_TIMEOUT", 3)
        self.login_failure_limit = self._integer("LOGIN_FAILURE_LIMIT", 10)
        self.login_lockout_minutes = self._number("LOGIN_LOCKOUT_MINUTES", 15.0)
        self.trusted_proxy_count = self._integer("TRUSTED_PROXY_COUNT", 0)
        self.time_zone = self._environ.get("TIME_ZONE", "UTC")
        self.https_only = self._boolean("HTTPS_ONLY", not self.debug)
        self.secure_hsts_seconds = self._integer("SECURE_HSTS_SECONDS", 31_536_000 if self.https_only else 0)
        self.secure_hsts_include_subdomains = self._boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
        self.secure_hsts_preload = self._boolean("SECURE_HSTS_PRELOAD", False)
        self.session_cookie_age = self._integer("SESSION_COOKIE_AGE", 12 * 60 * 60)
        self.log_level = self._environ.get("LOG_LEVEL", "INFO").upper()
        self.django_log_level = self._environ.get("DJANGO_LOG_LEVEL", "WARNING").upper()
        self.metrics_token = self._environ.get("METRICS_TOKEN", "")

        # Requests and the server's worker (settings.py and gunicorn_config.py)
        self.max_upload_bytes = self._integer("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
        self.max_image_pixels = self._integer("MAX_IMAGE_PIXELS", 25_000_000)
        self.max_request_body_bytes: int | None = self._integer("MAX_REQUEST_BODY_BYTES", None)  # settings.py's
        self.request_read_timeout = self._number("REQUEST_READ_TIMEOUT", 60.0)
        self.gunicorn_threads = self._integer("GUNICORN_THREADS", 4)
        self.image_concurrency = self._integer("IMAGE_CONCURRENCY", 1)
        self.image_queue_seconds = self._number("IMAGE_QUEUE_SECONDS", 30.0)
        self.worker_max_rss_mb = self._integer("WORKER_MAX_RSS_MB", 360)
        self.gunicorn_max_requests = self._integer("GUNICORN_MAX_REQUESTS", 0)
        self.gunicorn_max_requests_jitter = self._integer("GUNICORN_MAX_REQUESTS_JITTER", 0)

        # Models (settings.py)
        self.model_artifacts_dir = Path(self._environ.get("MODEL_ARTIFACTS_DIR", BASE_DIR / "predictors" / "artifacts"))
        self.model_memory_budget_mb = self._integer("MODEL_MEMORY_BUDGET_MB", 300)
        self.model_retry_seconds = self._number("MODEL_RETRY_SECONDS", 5.0)
        self.warm_models = self._names("WARM_MODELS", "")
        self.ort_intra_op_threads = self._integer("ORT_INTRA_OP_THREADS", 1)
        self.ort_graph_optimization = self._choice("ORT_GRAPH_OPTIMIZATION", "all", GRAPH_OPTIMIZATIONS,
                                                   "a graph optimisation level")
        self.model_runtime_overrides = dict(item.split("=", 1) for item in self._names("MODEL_RUNTIME_OVERRIDES", "")
                                            if "=" in item)
        self.inference_url = self._environ.get("INFERENCE_URL", "").strip().rstrip("/")
        self.inference_timeout = self._number("INFERENCE_TIMEOUT", 10.0)
        self.inference_token = self._environ.get("INFERENCE_TOKEN", "")
        self.inference_models: list[str] | None = self._names("INFERENCE_MODELS", None)  # settings.py's: the image models

        # gunicorn alone (gunicorn_config.py)
        self.port = self._integer("PORT", 8000)
        self.gunicorn_bind = self._text("GUNICORN_BIND", f"0.0.0.0:{self.port}")
        self.gunicorn_control_socket = self._environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
        self.web_concurrency = self._integer("WEB_CONCURRENCY", 1)
        self.gunicorn_worker_class = self._text("GUNICORN_WORKER_CLASS", "asgi")
        self.gunicorn_worker_connections = self._integer("GUNICORN_WORKER_CONNECTIONS", 500)
        self.gunicorn_timeout = self._integer("GUNICORN_TIMEOUT", 120)
        self.gunicorn_graceful_timeout = self._integer("GUNICORN_GRACEFUL_TIMEOUT", 30)
        self.gunicorn_keepalive = self._integer("GUNICORN_KEEPALIVE", 5)
        self.gunicorn_accesslog = self._environ.get("GUNICORN_ACCESSLOG", "-")
        self.gunicorn_loglevel = self._environ.get("GUNICORN_LOGLEVEL", "info")

    def _text(self, name: str, default: str) -> str:
        """The value as written; blank is unset."""
        return self._environ.get(name, "").strip() or default

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], wrong: str) -> T:
        raw = self._environ.get(name, "")
        if not raw.strip():
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} {wrong}")
            return default

    def _integer(self, name: str, default: T) -> int | T:
        return self._parsed(name, default, int, "is not a whole number.")

    def _number(self, name: str, default: float) -> float:
        return self._parsed(name, default, float, "is not a number.")

    def _boolean(self, name: str, default: bool) -> bool:
        """A boolean the way operators write them (1/0, true/false, yes/no, on/off)."""
        return self._parsed(name, default, _boolean, "is not a boolean; use 1/0, true/false, yes/no or on/off.")

    def _choice(self, name: str, default: str, choices: tuple[str, ...], what: str) -> str:
        return self._parsed(name, default, lambda raw: _one_of(raw, choices),
                            f"is not {what}; use {', '.join(choices[:-1])} or {choices[-1]}.")

    def _names(self, name: str, default: str | None) -> list[str] | None:
        """Comma-separated names; set but blank is no names, unset is the default's."""
        raw = self._environ.get(name, default)
        return None if raw is None else [item.strip() for item in raw.split(",") if item.strip()]


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise ValueError(raw)


def _one_of(raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ValueError(raw)
    return value
