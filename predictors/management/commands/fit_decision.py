"""python manage.py fit_decision [retina ecg] [--workers N]: choose shipped image models' decision rule again.

Chooses the rule an image result is decided by (training/calibration.py: a finding's uncertain
threshold; the retina's referral call and its uncertain band) on each model's own validation
photos in ../shared/data, with the card's own temperature, adds what that rule gives on the
test photos, and publishes the artifact again; the graph does not change. Training runs the
same steps for a new model, so this is for artifacts trained before the rule changed. Needs
the training environment.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from predictors.catalogue import IMAGE


class Command(BaseCommand):
    help = "Choose the decision rule of shipped image models again and add its test figures (training environment)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", choices=IMAGE, help="image models (default: both)")
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, names: list[str], workers: int, **options) -> None:
        from predictors.training import vision

        for name in names or IMAGE:
            decision = vision.refit_decision(name, Path(settings.MODEL_ARTIFACTS_DIR) / name, workers)
            self.stdout.write(f"{name}: {decision}")
