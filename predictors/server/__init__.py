"""The web server around Django: the ASGI bridge gunicorn's asyncio worker runs, start-up,
admission control for image work, and worker recycling.

Importable before Django: the bridge answers /health/ while Django is still importing.
HealthOracle/asgi.py is the one-line entry point.
"""
