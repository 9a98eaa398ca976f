"""python manage.py train_models [names] [--quick] [--output DIR] [--from-weights]"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from predictors.catalogue import NAMES


class Command(BaseCommand):
    help = ("Train the demo models (needs requirements-train.txt) and write their artifacts. "
            "--quick makes tiny versions in about a minute, for tests and CI.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help=f"models to train: {', '.join(NAMES)} (default: all)")
        parser.add_argument("--quick", action="store_true", help="tiny data and one epoch")
        parser.add_argument("--output", type=Path, default=None,
                            help="artifacts root (default: MODEL_ARTIFACTS_DIR)")
        parser.add_argument("--workers", type=int, default=2, help="processes generating images")
        parser.add_argument("--from-weights", action="store_true",
                            help="image models: export, quantize, calibrate and card the weights the last full "
                                 "training kept (var/weights/) instead of training again")

    def handle(self, *args, **options) -> None:
        try:
            from predictors.training.pipeline import train_models
        except ImportError as exc:
            raise CommandError(f"training needs requirements-train.txt installed ({exc})") from exc
        names = options["names"] or list(NAMES)
        out_root = options["output"] or Path(settings.MODEL_ARTIFACTS_DIR)
        try:
            cards = train_models(names, out_root, quick=options["quick"], workers=options["workers"],
                                 from_weights=options["from_weights"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for name, card in cards.items():
            self.stdout.write(f"{name} {card.version}: {json.dumps(card.fields['metrics'])[:400]}")
