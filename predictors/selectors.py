"""Reads: of the prediction history, what a clinician's lists show; of the served cards, what a
result page needs from the model version that answered."""
from __future__ import annotations

import datetime
from typing import Any, Mapping

from django.db.models import Q, QuerySet

from .models import Prediction
from .serving.registry import ModelUnavailable, get_loader


def history(user, *, model: str | None = None, since: datetime.date | None = None,
            until: datetime.date | None = None, reference: str = "") -> QuerySet[Prediction]:
    """A clinician's submissions, newest first, with their attached results.

    Filtering by model finds a submission by its attached result too: the retinopathy
    grades include those made with a diabetes form. Dates are whole days in the site's
    time zone, both ends included.
    """
    records = Prediction.objects.filter(user=user, parent__isnull=True)
    if model:
        attached = Prediction.objects.filter(user=user, model_name=model, parent__isnull=False).values("parent_id")
        records = records.filter(Q(model_name=model) | Q(pk__in=attached))
    if since:
        records = records.filter(created__date__gte=since)
    if until:
        records = records.filter(created__date__lte=until)
    if reference:
        records = records.filter(reference__icontains=reference)
    return records.prefetch_related("attachments")


def recent(user, count: int) -> QuerySet[Prediction]:
    """A clinician's latest submissions, with their attached results, for the dashboard."""
    return Prediction.objects.filter(user=user, parent__isnull=True).prefetch_related("attachments")[:count]


def served_card(model: str) -> Mapping[str, Any]:
    """The served model's card, for the figures a result quotes from it; empty if it cannot be read."""
    try:
        return get_loader().card(model)
    except ModelUnavailable:
        return {}


def served_labels(model: str) -> list[str]:
    """The served model's classes in its graph's output order (grade 0 to 4, say); none if its card
    cannot be read."""
    try:
        return [str(label) for label in get_loader().card(model).get("labels", [])]
    except ModelUnavailable:
        return []


def served_input(model: str) -> Mapping[str, Any]:
    """How the served model's input is made (its card's `input`); empty if its card cannot be read."""
    try:
        return get_loader().card(model).get("input") or {}
    except ModelUnavailable:
        return {}
