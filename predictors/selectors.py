"""Reads of the prediction history: what a clinician's lists show."""
from __future__ import annotations

import datetime

from django.db.models import Q, QuerySet

from .models import Prediction


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
