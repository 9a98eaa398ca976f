"""python manage.py export_history [--format jsonl|csv] [--user NAME] [--output FILE]

Writes the clinic's predictions (every clinician's, or one's) so the records outlive the
database: Render's free PostgreSQL is deleted after a fixed period. One record per line
in JSON Lines, or one row per record in CSV (inputs and outputs as JSON text), oldest
first; an image's result attached to a form names the form's record in `parent_id`.
Images were never stored, so none are exported.
"""
from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError

from predictors.models import Prediction

COLUMNS = ("id", "created", "user", "model", "model_version", "source", "reference", "parent_id", "latency_ms",
           "inputs", "outputs")


def record(prediction: Prediction) -> dict[str, Any]:
    return {"id": prediction.pk, "created": prediction.created.isoformat(), "user": prediction.user.get_username(),
            "model": prediction.model_name, "model_version": prediction.model_version, "source": prediction.source,
            "reference": prediction.reference, "parent_id": prediction.parent_id,
            "latency_ms": prediction.latency_ms, "inputs": prediction.inputs, "outputs": prediction.outputs}


class Command(BaseCommand):
    help = "Export predictions as JSON Lines or CSV, so they survive the free database's expiry."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
        parser.add_argument("--user", help="only this clinician's predictions")
        parser.add_argument("--output", help="file to write (default: stdout)")

    def handle(self, *args, format: str, user: str | None, output: str | None, **options) -> None:
        records = Prediction.objects.select_related("user").order_by("created", "id")
        if user:
            records = records.filter(user__username=user)
            if not records.exists():
                raise CommandError(f"no predictions by a user named {user!r}")
        out: Any = open(output, "w", newline="", encoding="utf-8") if output else self.stdout
        try:
            count = self._write(records.iterator(chunk_size=500), format, out)
        finally:
            if output:
                out.close()
        self.stderr.write(f"exported {count} prediction(s) as {format}" + (f" to {output}" if output else ""))

    @staticmethod
    def _write(records, format: str, out: TextIO) -> int:
        count = 0
        if format == "csv":
            writer = csv.DictWriter(out, fieldnames=COLUMNS)
            writer.writeheader()
        for prediction in records:
            row = record(prediction)
            if format == "csv":
                writer.writerow({**row, "inputs": json.dumps(row["inputs"], ensure_ascii=False),
                                 "outputs": json.dumps(row["outputs"], ensure_ascii=False)})
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
