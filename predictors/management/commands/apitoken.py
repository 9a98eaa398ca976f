"""python manage.py apitoken <username> [--create-user] [--name NAME]"""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from predictors.models import APIToken


class Command(BaseCommand):
    help = "Issue an API token for a clinician and print it (it cannot be shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create-user", action="store_true",
                            help="create the user (with a random password, printed once) if missing")
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args, username: str, create_user: bool, name: str, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"no user named {username!r}; pass --create-user to create one")
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username=username, password=password)
            self.stderr.write(f"created user {username!r} with password: {password}")
        _, key = APIToken.issue(user, name=name)
        self.stdout.write(key)
