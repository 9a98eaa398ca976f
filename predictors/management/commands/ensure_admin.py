"""python manage.py ensure_admin: the first staff account, from the environment, at every build.

Render's free plan has no shell, so `createsuperuser` cannot be run there. The Blueprint
asks the deployer for ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD (`sync: false`) and
the build runs this command: it creates that superuser, or brings an existing one's
email, password and staff rights up to date. Re-deploys never duplicate or fail; with
the variables unset it does nothing (a local run, or a deployer who made the account
another way).
"""
from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

VARIABLES = ("ADMIN_USERNAME", "ADMIN_EMAIL", "ADMIN_PASSWORD")


class Command(BaseCommand):
    help = "Create or update the staff account named by ADMIN_USERNAME / ADMIN_EMAIL / ADMIN_PASSWORD."

    def handle(self, *args, **options) -> None:
        username, email, password = (os.environ.get(name, "").strip() for name in VARIABLES)
        if not username and not password:
            self.stdout.write("ADMIN_USERNAME and ADMIN_PASSWORD are not set: no admin account created or changed.")
            return
        if not username or not password:
            missing = [name for name, value in zip(VARIABLES, (username, email, password)) if not value
                       and name != "ADMIN_EMAIL"]
            raise CommandError(f"{' and '.join(missing)} not set: set both ADMIN_USERNAME and ADMIN_PASSWORD.")
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=username).first()
            created = user is None
            if created:
                user = User(username=username)
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(f"ADMIN_PASSWORD is too weak: {' '.join(exc.messages)}") from None
            user.email = email or user.email
            user.is_staff = user.is_superuser = user.is_active = True
            if created or not user.check_password(password):
                user.set_password(password)
            user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} admin account {username!r}.")
