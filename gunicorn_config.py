"""Gunicorn settings for one 512 MB, 0.1-CPU Render instance.

Every value can be overridden from the environment (GUNICORN_*, WEB_CONCURRENCY, PORT)
so the same file serves Render, the local run command and the benchmarks. The variables
are read by HealthOracle.environment, as the site's settings are.

A value that does not parse (the site's variables included) stops gunicorn here, before
any worker starts, in one line naming the variable: gunicorn prints a traceback for
whatever else this file raises, and a SystemExit is printed as its message alone.
"""
import os
import sys

from HealthOracle.environment import Environment

env = Environment()
if env.problems:
    sys.exit("\n".join(env.problems))

# Render routes traffic to $PORT on all interfaces; bin/serve narrows it to 127.0.0.1:$PORT.
bind = env.gunicorn_bind

# gunicorn 25+ opens a control socket for gunicornc, by default at one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl): a second instance takes it
# over, and stopping either deletes the other's. Nothing here uses gunicornc, so it is off
# unless GUNICORN_CONTROL_SOCKET names a path for this one instance.
control_socket = env.gunicorn_control_socket
control_socket_disable = not control_socket

# One worker: every worker holds its own copy of the models, and one copy is what
# 512 MB affords. Scale out with more instances, not more workers.
workers = env.web_concurrency

# gunicorn's asyncio worker reads every request (headers and whole body) in its event
# loop, where a slow or stalled client costs a coroutine, and predictors/server/bridge.py then
# runs Django in GUNICORN_THREADS threads, so /health/ and light pages answer while
# another thread loads a model or runs ONNX Runtime (which releases the GIL). Under
# gthread four clients trickling header bytes held all four threads and /health/ timed
# out; gevent survives them but stalls every request behind each inference. Figures:
# docs/benchmarks.md ("Worker class"). GUNICORN_WORKER_CLASS=gthread or gevent exist
# only so the benchmark can measure them; the worker class picks the entry point.
# The worker classes this file supports, each with the entry point it serves.
ENTRY_POINTS = {
    "asgi": "HealthOracle.asgi:application",
    "gthread": "HealthOracle.wsgi:application",
    "gevent": "HealthOracle.wsgi:application",
}
worker_class = env.gunicorn_worker_class
if worker_class not in ENTRY_POINTS:
    sys.exit(f"GUNICORN_WORKER_CLASS={worker_class!r} is not supported (gunicorn_config.py); "
             f"use {', '.join(ENTRY_POINTS)}.")
# GUNICORN_THREADS sizes predictors/server/bridge.py's pool (settings.SERVER_THREADS); gunicorn's
# own thread setting is for gthread only.
threads = env.gunicorn_threads if worker_class == "gthread" else 1
wsgi_app = ENTRY_POINTS[worker_class]
# Connections one worker holds open at once, idle or slow ones included.
worker_connections = env.gunicorn_worker_connections

# The slowest legitimate request is a cold ResNet50 load plus one inference on a
# throttled 0.1 CPU (measured at a few seconds on 2 full cores, ~10x that when
# throttled); the worker's event loop keeps heart-beating while requests run in their
# threads, so this only fires if the worker is truly stuck.
timeout = env.gunicorn_timeout
# On recycling or deploys, in-flight predictions get this long to finish.
graceful_timeout = env.gunicorn_graceful_timeout
keepalive = env.gunicorn_keepalive

# gunicorn's own recycling is off: it counts Render's /health/ probes (alone they would
# recycle an idle worker every ~1,000 probes) and stops the old worker before the new
# one has booted, seconds without a listener on 0.1 CPU. predictors/server/recycling.py
# recycles instead, when the worker's memory grows past WORKER_MAX_RSS_MB or after
# GUNICORN_MAX_REQUESTS requests other than probes, starting the replacement first.
max_requests = 0
max_requests_jitter = 0

# The heartbeat file lives in RAM: on Render's disk a slow fsync can look like a hung
# worker and get it killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# No preload: models load lazily inside the worker, so preloading saves nothing, and
# native thread pools created before fork() can deadlock in the child.
preload_app = False

# Requests carry at most one image; bigger request lines or headers are abuse.
limit_request_line = 8190
limit_request_fields = 100

accesslog = env.gunicorn_accesslog
errorlog = "-"
loglevel = env.gunicorn_loglevel
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


def on_starting(server) -> None:
    """Serve the entry point the worker class needs, whichever module the command names.

    Commands written for the WSGI workers (`gunicorn ... HealthOracle.wsgi`) keep working:
    the asgi worker cannot serve a WSGI callable, so it gets HealthOracle.asgi instead.
    """
    named = server.app.app_uri
    if named.split(":")[0] in ("HealthOracle.wsgi", "HealthOracle.asgi") and named != wsgi_app:
        server.log.info("worker class %s serves %s (not %s)", worker_class, wsgi_app, named)
        server.app.app_uri = wsgi_app


def post_fork(server, worker) -> None:
    """Tune glibc malloc before the worker's threads exist (see predictors.serving.memory)."""
    from predictors.serving.memory import tune_malloc

    tune_malloc()
    if worker_class == "gevent":  # benchmark only: psycopg2 must yield to the event loop
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


def when_ready(server) -> None:
    """Let workers know their arbiter, so a worker can ask it for a replacement (recycling.py)."""
    os.environ["HEALTHORACLE_ARBITER_PID"] = str(os.getpid())


def nworkers_changed(server, new_value: int, old_value: int | None) -> None:
    """When a recycled worker's replacement asks for one worker fewer, the arbiter stops its oldest:
    make that the worker being replaced (predictors/server/recycling.py)."""
    if old_value is not None and new_value < old_value:
        from predictors.server.recycling import retire_named_predecessor

        retire_named_predecessor(server.WORKERS, os.getpid())


def worker_exit(server, worker) -> None:
    """Exit cleanly: no model load may still run on another thread when the process ends.

    The lifespan shutdown does this on a graceful exit; a quick one (SIGINT, SIGQUIT)
    skips it. Nothing is imported here that the worker has not imported already.
    """
    import sys

    warmup = sys.modules.get("predictors.serving.warmup")
    if warmup is not None:
        warmup.stop_warmup()
