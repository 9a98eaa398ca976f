"""python manage.py import_model retina|ecg --state-dict FILE.pt [--calibration DIR]
   python manage.py import_model diabetes|heart --xgboost FILE.json"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from predictors.catalogue import IMAGE, NAMES


class Command(BaseCommand):
    help = ("Turn your own weights into a served artifact: a torchvision state_dict for retina "
            "(EfficientNet-Lite0, efficientnet-lite-pytorch) or ecg (torchvision resnet50), exported and int8-quantized; or an XGBoost model "
            "file for diabetes or heart, checked against the expected features.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", choices=NAMES)
        parser.add_argument("--state-dict", type=Path, help="PyTorch state_dict (.pt) for retina/ecg")
        parser.add_argument("--xgboost", type=Path, help="XGBoost model (.json/.ubj) for diabetes/heart")
        parser.add_argument("--calibration", type=Path, help="folder of real images to calibrate int8 on")
        parser.add_argument("--input-size", type=int, default=224, help="square input size the weights expect")
        parser.add_argument("--output", type=Path, default=None, help="artifacts root (default: MODEL_ARTIFACTS_DIR)")

    def handle(self, *args, name: str, state_dict: Path | None, xgboost: Path | None, calibration: Path | None,
               input_size: int, output: Path | None, **options) -> None:
        try:
            from predictors.training.import_weights import ImportFailed, import_image_model, import_tabular_model
        except ImportError as exc:
            raise CommandError(f"importing needs requirements-train.txt installed ({exc})") from exc
        out_dir = (output or Path(settings.MODEL_ARTIFACTS_DIR)) / name
        image = name in IMAGE
        source = state_dict if image else xgboost
        flag = "--state-dict" if image else "--xgboost"
        if source is None:
            raise CommandError(f"{name} needs {flag} FILE")
        if not source.is_file():
            raise CommandError(f"{source} does not exist")
        if calibration is not None and not calibration.is_dir():
            raise CommandError(f"{calibration} is not a folder")
        try:
            card = (import_image_model(name, source, out_dir, calibration, input_size) if image
                    else import_tabular_model(name, source, out_dir))
        except ImportFailed as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"imported {name} version {card.version} into {out_dir}")
