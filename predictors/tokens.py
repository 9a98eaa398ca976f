"""A clinician's own API tokens: issue, list, revoke (the tokens page and `manage.py apitoken`)."""
from __future__ import annotations

import logging

from django.db.models import QuerySet

from .models import APIToken

log = logging.getLogger(__name__)


def tokens_of(user) -> QuerySet[APIToken]:
    return APIToken.objects.filter(user=user).order_by("-created")


def issue(user, name: str) -> tuple[APIToken, str]:
    """A new token and its key; the key is shown once and only its hash is kept."""
    token, key = APIToken.issue(user, name=name)
    log.info("API token %s… issued to %s (%s)", token.prefix, user, name or "unnamed")
    return token, key


def revoke(user, pk: int) -> bool:
    """Delete one of the user's own tokens; False when it is not theirs or already gone."""
    deleted, _ = APIToken.objects.filter(user=user, pk=pk).delete()
    if deleted:
        log.info("API token %s revoked by %s", pk, user)
    return bool(deleted)
