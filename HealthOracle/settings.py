"""Settings for HealthOracle, read from the environment (12-factor).

Every knob an operator may turn is an environment variable documented in README.md;
the defaults run the site locally on SQLite with the demo models shipped in the repo.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean the way operators write them (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def _env_number(name: str, default, cast):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid {cast.__name__}.") from exc


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(Render generates one from render.yaml). In a checkout, run manage.py as bin/manage, "
            "which sets the one bin/serve uses, or set DEBUG=1 for development."
        )
    SECRET_KEY = "insecure-development-key-used-only-with-DEBUG-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
RENDER_EXTERNAL_HOSTNAME = os.environ.get("RENDER_EXTERNAL_HOSTNAME", "").strip()
if RENDER_EXTERNAL_HOSTNAME:
    ALLOWED_HOSTS.append(RENDER_EXTERNAL_HOSTNAME)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS") + (
    [f"https://{RENDER_EXTERNAL_HOSTNAME}"] if RENDER_EXTERNAL_HOSTNAME else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "predictors",
]

MIDDLEWARE = [
    "predictors.middleware.ErrorShapeMiddleware",
    "predictors.middleware.PrivateResponseMiddleware",
    "predictors.middleware.PlainHttpAPIMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "predictors.middleware.RequestLimitsMiddleware",
    "predictors.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "HealthOracle.urls"
WSGI_APPLICATION = "HealthOracle.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default so the site runs with no setup; Render injects DATABASE_URL for
# PostgreSQL. Persistent connections with health checks avoid a connect per request
# without serving a request on a connection the server already dropped.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that stops answering must fail a request within the gunicorn timeout,
    # not hang the worker until the probe kills it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"connect_timeout": env_int("DB_CONNECT_TIMEOUT", 3)}
    )

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead log: readers never wait for the writer, and a commit appends to the log
    # without a flush of its own (each prediction's commit cost ~20 ms of fsync otherwise);
    # a crash can lose the last commits, never corrupt the file. Production runs PostgreSQL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes, predictors/throttle.py): the LOGIN_FAILURE_LIMIT-th
# wrong password for one account, or from one client address, and every attempt after
# it are refused with 429 for LOGIN_LOCKOUT_MINUTES, before any password hashing; the admin
# log-in goes through the same backend. A success clears the account's count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "predictors.throttle.lockout"
AXES_CLIENT_IP_CALLABLE = "predictors.throttle.client_ip"
# Proxies in front of the site that append to X-Forwarded-For (Render: 1); 0 trusts none.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploads: Django keeps bodies up to this size in memory and refuses larger ones
# before a view runs; predictors/images/decode.py applies its own byte and pixel caps again on decode.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
# 25 megapixels: a fundus camera (IDRiD: 4288×2848, 12 MP), an A4 ECG scanned at
# 400 dpi (16 MP) or a 24 MP phone photo; images.decode.MAX_DECODED_BYTES bounds memory too.
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 25_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 64 * 1024
# The body limits RequestLimitsMiddleware applies, owned here so the server's limit below
# can never fall short of them: an API body may carry one upload, a page's form up to
# FORM_BODY_FACTOR times as much, which the form reads to its end, discarding it, so it can
# say the file is too large and keep what was typed (predictors/uploads.py). Both get
# UPLOAD_BODY_ALLOWANCE for the multipart envelope and the other fields around one image.
FORM_BODY_FACTOR = 4
UPLOAD_BODY_ALLOWANCE = 256 * 1024
_form_body_bytes = FORM_BODY_FACTOR * MAX_UPLOAD_BYTES + UPLOAD_BODY_ALLOWANCE
# The server (predictors/server/bridge.py) reads each request whole in its event loop before
# a thread runs Django: bodies up to this size, within this many seconds (a 10 MB upload
# over a 1.5 Mbit/s link), else 408; a body declared larger is left unread for Django to
# refuse. Smaller than a page form's limit, the server itself would answer a bare 413
# where the form should have kept what was typed, so that stops start-up instead.
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", _form_body_bytes)
if MAX_REQUEST_BODY_BYTES < _form_body_bytes:
    raise ImproperlyConfigured(
        f"MAX_REQUEST_BODY_BYTES={MAX_REQUEST_BODY_BYTES} is below the {_form_body_bytes} bytes a page's form may "
        f"send ({FORM_BODY_FACTOR} × MAX_UPLOAD_BYTES + {UPLOAD_BODY_ALLOWANCE}); raise it, or lower MAX_UPLOAD_BYTES."
    )
REQUEST_READ_TIMEOUT = env_float("REQUEST_READ_TIMEOUT", 60.0)
# Threads running Django in the worker (gunicorn_config.py reads the same variable).
SERVER_THREADS = env_int("GUNICORN_THREADS", 4)
# Image requests run at once; the rest wait in the event loop this long, then get a 503
# with Retry-After (API) or the page again saying the site is busy (predictors/server/admission.py).
IMAGE_CONCURRENCY = max(1, env_int("IMAGE_CONCURRENCY", 1))
IMAGE_QUEUE_SECONDS = env_float("IMAGE_QUEUE_SECONDS", 30.0)
# Worker recycling (predictors/server/recycling.py): when resident memory passes this, or
# after GUNICORN_MAX_REQUESTS requests other than /health/ (0: never by count).
WORKER_MAX_RSS_MB = env_int("WORKER_MAX_RSS_MB", 360)
WORKER_MAX_REQUESTS = env_int("GUNICORN_MAX_REQUESTS", 0)
WORKER_MAX_REQUESTS_JITTER = env_int("GUNICORN_MAX_REQUESTS_JITTER", 0)
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 64 * 1024

# Behind Render's TLS-terminating proxy. HTTPS_ONLY is on in production; the local
# run command turns it off so the site works on http://127.0.0.1.
HTTPS_ONLY = env_bool("HTTPS_ONLY", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$"]
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS_ONLY else 0)
# Off unless asked for: both bind every subdomain of the operator's domain to HTTPS
# (preload for years, in browsers' built-in lists), which only the domain's owner can decide.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Django's deploy check warns whenever these two are off; off is the deliberate default
# above, so only those two warnings are silenced, and every other deploy warning stays.
SILENCED_SYSTEM_CHECKS = [check for check, opted_in in (("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
                                                        ("security.W021", SECURE_HSTS_PRELOAD)) if not opted_in]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A clinician's shift, not Django's two weeks; and gone when the browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Logs go to stderr: stdout is for what a command prints (`KEY=$(manage.py apitoken bob)`);
# Render and gunicorn collect both.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING").upper(), "propagate": False},
    },
}

# Models. The registry reads these; nothing loads at start-up.
MODEL_ARTIFACTS_DIR = Path(os.environ.get("MODEL_ARTIFACTS_DIR", BASE_DIR / "predictors" / "artifacts"))
# Sized for a 512 MB instance: the process without models is ~90 MB, the four demo
# models ~100 MB; the budget leaves room for request buffers and a model being swapped.
MODEL_MEMORY_BUDGET_MB = env_int("MODEL_MEMORY_BUDGET_MB", 300)
# After a failed load, wait this long before trying the same model again.
MODEL_RETRY_SECONDS = env_float("MODEL_RETRY_SECONDS", 5.0)
# Models to load in a background thread once a worker starts: names, "all" or empty.
WARM_MODELS = env_list("WARM_MODELS")
# Threads ONNX Runtime may use for one image; 1 keeps one request from starving the
# other gunicorn threads (and /health/) on a fractional-CPU instance.
ORT_INTRA_OP_THREADS = env_int("ORT_INTRA_OP_THREADS", 1)
# Checked here so a typo stops the server at start-up instead of failing the first image
# request; predictors/serving/runtimes/onnx_image.py maps the name to ONNX Runtime's level.
ORT_GRAPH_OPTIMIZATION = os.environ.get("ORT_GRAPH_OPTIMIZATION", "").strip().lower() or "all"
if ORT_GRAPH_OPTIMIZATION not in {"disable", "basic", "extended", "all"}:
    raise ImproperlyConfigured(
        f"ORT_GRAPH_OPTIMIZATION={os.environ['ORT_GRAPH_OPTIMIZATION']!r} is not a graph optimisation level; "
        "use disable, basic, extended or all."
    )
# kind=dotted.Class pairs replacing a runtime, e.g. the benchmark's torch baseline:
# "onnx_image=bench.torch_runtime.TorchImage". Empty in production.
MODEL_RUNTIME_OVERRIDES = dict(item.split("=", 1) for item in env_list("MODEL_RUNTIME_OVERRIDES") if "=" in item)
# Image models whose graphs run on an Open Inference Protocol server (Triton, MLServer, KServe)
# instead of in this process: its base URL, the models it serves (image models only; all of
# them by default), seconds to wait for it to connect and for each read, and a bearer token
# it may require. Unset, every model runs here (predictors/serving/runtimes/oip_image.py).
INFERENCE_URL = os.environ.get("INFERENCE_URL", "").strip().rstrip("/")
INFERENCE_TIMEOUT = env_float("INFERENCE_TIMEOUT", 10.0)
INFERENCE_TOKEN = os.environ.get("INFERENCE_TOKEN", "")
INFERENCE_MODELS: list[str] = []
if INFERENCE_URL:
    from predictors.catalogue import IMAGE

    if not INFERENCE_URL.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"INFERENCE_URL={INFERENCE_URL!r} is not an http:// or https:// URL.")
    if not INFERENCE_TIMEOUT > 0:
        raise ImproperlyConfigured(f"INFERENCE_TIMEOUT={INFERENCE_TIMEOUT} must be a positive number of seconds.")
    INFERENCE_MODELS = env_list("INFERENCE_MODELS", ",".join(IMAGE))
    if unknown := sorted(set(INFERENCE_MODELS) - set(IMAGE)):
        raise ImproperlyConfigured(f"INFERENCE_MODELS names {', '.join(unknown)}: only the image models "
                                   f"({', '.join(IMAGE)}) can be served by a model server.")
# A bearer token that may read /metrics besides staff sessions; empty disables it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
