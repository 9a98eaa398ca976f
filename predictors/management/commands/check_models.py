"""python manage.py check_models: are the four artifacts present and intact?"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Verify every model artifact against its manifest without loading it (what /ready/ "
            "checks). Exits non-zero when one is missing or corrupt, so a build can stop there.")

    def handle(self, *args, **options) -> None:
        from predictors.serving.registry import get_loader

        loader = get_loader()
        problems = loader.check_artifacts()
        for name, problem in problems.items():
            self.stdout.write(f"{name:9s} {'ok' if problem is None else problem}")
        broken = {n: p for n, p in problems.items() if p}
        if broken:
            raise CommandError(f"{len(broken)} model artifact(s) unusable in {loader.artifacts_dir}: "
                               f"{', '.join(broken)}. Restore them from git or run "
                               "`VENV=.venv-dev bin/manage train_models`.")
