"""ASGI entry point for gunicorn's asyncio worker (gunicorn_config.py); the server is predictors/server/."""
from predictors.server.bridge import BufferedWSGIBridge
from predictors.server.startup import load_site

application = BufferedWSGIBridge(load_site)
