"""PostgreSQL for the servers tests start in other processes.

Django's test database exists only inside this process's transactions, so a gunicorn
server started by a test cannot share it. Such servers get a scratch database of their
own on the same PostgreSQL server, created here and dropped (with any sessions still on
it) when the test is done, so a run leaves no database behind.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"


def is_postgres(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme in ("postgres", "postgresql", "pgsql")


def pass_database_url() -> str | None:
    """This pass's PostgreSQL URL (bin/test sets DATABASE_URL on the PostgreSQL pass), else None."""
    url = os.environ.get("DATABASE_URL")
    return url if is_postgres(url) else None


def postgres_server_url() -> str:
    """The PostgreSQL server a test may use even on the SQLite pass: this pass's, else TEST_DATABASE_URL."""
    return pass_database_url() or os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


@contextmanager
def scratch_database(server_url: str, prefix: str = "healthoracle_srv") -> Iterator[str]:
    """Yield the URL of a new, empty database on server_url's server; drop it afterwards.

    Raises psycopg2.OperationalError when the server does not answer.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        # FORCE ends the sessions a server killed mid-request may have left behind.
        _execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _execute(server_url: str, statement: str) -> None:
    """Run a statement from the server's maintenance database, as Django does to create its test
    database: the database named in the URL need not exist, and is never the one being dropped."""
    import psycopg2

    connection = psycopg2.connect(with_database(server_url, "postgres"), connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()
