"""python manage.py fit_domain [retina ecg] [--workers N]: give shipped image models their domain score.

Fits the score (predictors/training/domain.py) from each model's own split of the real
photos in ../shared/data and publishes the artifact again with it; the logits do not
change. Training runs the same step for a new model, so this is for artifacts trained
before the score existed. Needs the training environment.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from predictors.catalogue import IMAGE


class Command(BaseCommand):
    help = "Fit and add the domain score of shipped image models (training environment)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", choices=IMAGE, help="image models (default: both)")
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, names: list[str], workers: int, **options) -> None:
        from predictors.training import vision

        for name in names or IMAGE:
            section = vision.add_domain_to_artifact(name, Path(settings.MODEL_ARTIFACTS_DIR) / name, workers)
            self.stdout.write(f"{name}: threshold {section['threshold']}, "
                              f"{section['validation']['answered']:.1%} of validation photos and captures answered")
