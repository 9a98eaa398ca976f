"""Settings for HealthOracle, read from the environment (12-factor).

Every knob an operator may turn is an environment variable documented in README.md, read
and parsed once by HealthOracle.environment (which gunicorn_config.py reads too); the
defaults run the site locally on SQLite with the demo models shipped in the repo. A value
that does not parse, or does not fit the others, is a system-check error naming the
variable (predictors/checks.py), not a traceback here.
"""
from __future__ import annotations

from datetime import timedelta

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .environment import BASE_DIR, Environment

_env = Environment()
# What did not parse, one line per variable, for predictors/checks.py.
ENVIRONMENT_PROBLEMS = _env.problems

DEBUG = _env.debug

SECRET_KEY = _env.secret_key
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(Render generates one from render.yaml). In a checkout, run manage.py as bin/manage, "
            "which sets the one bin/serve uses, or set DEBUG=1 for development."
        )
    SECRET_KEY = "insecure-development-key-used-only-with-DEBUG-on"

ALLOWED_HOSTS = _env.allowed_hosts
RENDER_EXTERNAL_HOSTNAME = _env.render_external_hostname
if RENDER_EXTERNAL_HOSTNAME:
    ALLOWED_HOSTS.append(RENDER_EXTERNAL_HOSTNAME)
CSRF_TRUSTED_ORIGINS = _env.csrf_trusted_origins + (
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
    "default": dj_database_url.parse(_env.database_url, conn_max_age=_env.db_conn_max_age, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that stops answering must fail a request within the gunicorn timeout,
    # not hang the worker until the probe kills it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"connect_timeout": _env.db_connect_timeout}
    )

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead log: readers never wait for the writer, and a commit appends to the log
    # without a flush of its own (each prediction's commit cost ~20 ms of fsync otherwise);
    # a crash can lose the last commits, never corrupt the file. Production runs PostgreSQL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id at OWASP's minimum (predictors/hashers.py): a tenth of PBKDF2's CPU per log-in. PBKDF2 stays
# listed so hashes made before still verify; each is re-made as Argon2id at its next log-in.
PASSWORD_HASHERS = [
    "predictors.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

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
AXES_FAILURE_LIMIT = _env.login_failure_limit
AXES_COOLOFF_TIME = timedelta(minutes=_env.login_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "predictors.throttle.lockout"
AXES_CLIENT_IP_CALLABLE = "predictors.throttle.client_ip"
# Proxies in front of the site that append to X-Forwarded-For (Render: 1); 0 trusts none.
TRUSTED_PROXY_COUNT = _env.trusted_proxy_count
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = _env.time_zone
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
MAX_UPLOAD_BYTES = _env.max_upload_bytes
# 25 megapixels: a fundus camera (IDRiD: 4288×2848, 12 MP), an A4 ECG scanned at
# 400 dpi (16 MP) or a 24 MP phone photo; images.decode.MAX_DECODED_BYTES bounds memory too.
MAX_IMAGE_PIXELS = _env.max_image_pixels
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
# where the form should have kept what was typed, so that stops start-up instead
# (predictors/checks.py).
MAX_REQUEST_BODY_BYTES = _form_body_bytes if _env.max_request_body_bytes is None else _env.max_request_body_bytes
REQUEST_READ_TIMEOUT = _env.request_read_timeout
# Threads running Django in the worker (gunicorn_config.py's gthread threads are the same value).
SERVER_THREADS = _env.gunicorn_threads
# Image requests run at once; the rest wait in the event loop this long, then get a 503
# with Retry-After (API) or the page again saying the site is busy (predictors/server/admission.py).
IMAGE_CONCURRENCY = max(1, _env.image_concurrency)
IMAGE_QUEUE_SECONDS = _env.image_queue_seconds
# Worker recycling (predictors/server/recycling.py): when resident memory passes this, or
# after GUNICORN_MAX_REQUESTS requests other than /health/ (0: never by count).
WORKER_MAX_RSS_MB = _env.worker_max_rss_mb
WORKER_MAX_REQUESTS = _env.gunicorn_max_requests
WORKER_MAX_REQUESTS_JITTER = _env.gunicorn_max_requests_jitter
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 64 * 1024

# Behind Render's TLS-terminating proxy. HTTPS_ONLY is on in production; the local
# run command turns it off so the site works on http://127.0.0.1.
HTTPS_ONLY = _env.https_only
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$"]
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = _env.secure_hsts_seconds
# Off unless asked for: both bind every subdomain of the operator's domain to HTTPS
# (preload for years, in browsers' built-in lists), which only the domain's owner can decide.
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env.secure_hsts_include_subdomains
SECURE_HSTS_PRELOAD = _env.secure_hsts_preload
# Django's deploy check warns whenever these two are off; off is the deliberate default
# above, so only those two warnings are silenced, and every other deploy warning stays.
SILENCED_SYSTEM_CHECKS = [check for check, opted_in in (("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
                                                        ("security.W021", SECURE_HSTS_PRELOAD)) if not opted_in]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A clinician's shift, not Django's two weeks; and gone when the browser closes.
SESSION_COOKIE_AGE = _env.session_cookie_age
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Logs go to stderr: stdout is for what a command prints (`KEY=$(manage.py apitoken bob)`);
# Render and gunicorn collect both.
LOG_LEVEL = _env.log_level
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
        "django": {"handlers": ["stderr"], "level": _env.django_log_level, "propagate": False},
    },
}

# Models. The registry reads these; nothing loads at start-up.
MODEL_ARTIFACTS_DIR = _env.model_artifacts_dir
# Sized for a 512 MB instance: the process without models is ~90 MB, the four demo
# models ~100 MB; the budget leaves room for request buffers and a model being swapped.
MODEL_MEMORY_BUDGET_MB = _env.model_memory_budget_mb
# After a failed load, wait this long before trying the same model again; a client is asked
# to come back after it (Retry-After, predictors/serving/registry.py).
MODEL_RETRY_SECONDS = _env.model_retry_seconds
# Models to load in a background thread once a worker starts and has answered the requests that
# waited for it (predictors/server/bridge.py): names, "all" or empty.
WARM_MODELS = _env.warm_models
# Threads ONNX Runtime may use for one image; 1 keeps one request from starving the
# other gunicorn threads (and /health/) on a fractional-CPU instance.
ORT_INTRA_OP_THREADS = _env.ort_intra_op_threads
# Checked when read, so a typo stops the server at start-up instead of failing the first image
# request; predictors/serving/runtimes/onnx_image.py maps the name to ONNX Runtime's level.
ORT_GRAPH_OPTIMIZATION = _env.ort_graph_optimization
# kind=dotted.Class pairs replacing a runtime, e.g. the benchmark's torch baseline:
# "onnx_image=bench.torch_runtime.TorchImage". Empty in production.
MODEL_RUNTIME_OVERRIDES = _env.model_runtime_overrides
# Image models whose graphs run on an Open Inference Protocol server (Triton, MLServer, KServe)
# instead of in this process: its base URL, the models it serves (image models only; all of
# them by default), seconds to wait for it to connect and for each read, and a bearer token
# it may require. Unset, every model runs here (predictors/serving/runtimes/oip_image.py).
# predictors/checks.py holds them to a URL, a positive timeout and image models.
INFERENCE_URL = _env.inference_url
INFERENCE_TIMEOUT = _env.inference_timeout
INFERENCE_TOKEN = _env.inference_token
INFERENCE_MODELS: list[str] = []
if INFERENCE_URL:
    from predictors.catalogue import IMAGE

    INFERENCE_MODELS = list(IMAGE) if _env.inference_models is None else _env.inference_models
# A bearer token that may read /metrics besides staff sessions; empty disables it.
METRICS_TOKEN = _env.metrics_token
