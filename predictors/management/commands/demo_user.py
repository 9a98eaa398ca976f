"""bin/manage demo_user: a local clinician account for trying the site (bin/serve runs it)."""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local demo clinician with a random password, printed once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Demo clinician {username!r} exists (its password was printed when it was "
                              f"created; reset it with `bin/manage changepassword {username}`).")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_user(username=username, password=password)
        self.stdout.write(f"Created demo clinician {username!r} with password: {password}")
