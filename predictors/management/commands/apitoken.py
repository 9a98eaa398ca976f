"""python manage.py apitoken <username> [--create-user] [--name NAME] | --revoke=PREFIX | --list

Issuing prints the key alone on stdout (`KEY=$(manage.py apitoken bob)` holds just the key);
everything else (a created user's password, revocations, logs) goes to stderr.
"""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from predictors.models import APIToken
from predictors.tokens import revoke


class Command(BaseCommand):
    help = "Issue an API token for a clinician and print it (it cannot be shown again), list or revoke tokens."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create-user", action="store_true",
                            help="create the user (with a random password, printed once) if missing")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--revoke", metavar="PREFIX",
                            help="revoke this user's token whose key starts with PREFIX (as listed), or 'all'; "
                                 "write --revoke=PREFIX, as a prefix may begin with '-'")
        parser.add_argument("--list", action="store_true", dest="list_tokens", help="list this user's tokens (prefix, name, last use)")

    def handle(self, *args, username: str, create_user: bool, name: str, revoke: str | None, list_tokens: bool,
               **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user or revoke or list_tokens:
                raise CommandError(f"no user named {username!r}; pass --create-user to create one")
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username=username, password=password)
            self.stderr.write(f"created user {username!r} with password: {password}")
        if list_tokens:
            for token in APIToken.objects.filter(user=user).order_by("created"):
                used = f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "never used"
                self.stdout.write(f"{token.prefix}\t{token.name or '-'}\t{used}")
            return
        if revoke:
            count = self._revoke(user, revoke)
            self.stderr.write(f"revoked {count} token(s) of {username!r}")
            return
        _, key = APIToken.issue(user, name=name)
        self.stdout.write(key)

    def _revoke(self, user, prefix: str) -> int:
        tokens = APIToken.objects.filter(user=user)
        if prefix != "all":
            tokens = tokens.filter(prefix__startswith=prefix[:8])
            if not tokens.exists():
                raise CommandError(f"{user.get_username()!r} has no token starting with {prefix!r}; see --list")
            if tokens.count() > 1:
                raise CommandError(f"{tokens.count()} tokens start with {prefix!r}; give more of the prefix")
        return sum(revoke(user, token.pk) for token in tokens)
