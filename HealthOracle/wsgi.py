"""WSGI entry point for gunicorn; loads Django only, never a model."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "HealthOracle.settings")

application = get_wsgi_application()
