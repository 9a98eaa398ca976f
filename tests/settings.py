"""The real settings, with what a test run needs on top: a key, plain http, unhashed static."""
import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghijkl")
os.environ.setdefault("HTTPS_ONLY", "0")

from HealthOracle.settings import *  # noqa: E402,F401,F403
from HealthOracle.settings import STORAGES  # noqa: E402

# Templates render without a collectstatic run first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# A test that restores an artifact expects the next request to retry at once.
MODEL_RETRY_SECONDS = 0.0
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
