"""python manage.py warm_models [names|all]"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from predictors.serving.warmup import warm, warm_model_names


class Command(BaseCommand):
    help = ("Load and verify models now (default: all) and report each one's load time and "
            "memory. Exits non-zero if any fails, so a build can refuse a broken artifact.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", default=["all"])

    def handle(self, *args, names: list[str], **options) -> None:
        from predictors.serving.registry import get_loader

        selected = warm_model_names(names)
        if not selected:
            raise CommandError(f"no known model in {names}")
        failures = {name: reason for name, reason in warm(selected).items() if reason}
        for entry in get_loader().status()["models"]:
            if entry["name"] in selected:
                self.stdout.write(f"{entry['name']:9s} {entry['state']:12s} {entry['version'] or '-'} "
                                  f"load {entry['load_seconds'] or 0:.2f}s cost {entry['cost_mb'] or 0} MB")
        if failures:
            raise CommandError("; ".join(f"{n}: {r}" for n, r in failures.items()))
