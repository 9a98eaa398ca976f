"""Prediction history and API tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from .catalogue import CHOICES

REFERENCE_MAX_LENGTH = 40
# How precisely an API token's last use is recorded (the tokens page shows it to the minute).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Prediction(models.Model):
    """One model's answer for one clinician, with what it was asked.

    Uploaded images are never stored: `inputs` keeps their sha256, size and
    dimensions. A form that also carried an image (diabetes + fundus, heart + ECG)
    gives two rows; the image's row points at the form's through `parent`.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=20, choices=CHOICES)
    model_version = models.CharField(max_length=64)
    inputs = models.JSONField()
    outputs = models.JSONField()
    latency_ms = models.FloatField(help_text="Model fetch (a load, on a cold first request), preprocessing and inference, in ms.")
    source = models.CharField(max_length=8, choices=[("web", "Web form"), ("api", "API")], default="web")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    reference = models.CharField(
        max_length=REFERENCE_MAX_LENGTH, blank=True,
        help_text="The clinician's own case reference (a bed, clinic slot or code); never a patient's name.")
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "-created"], name="prediction_user_recent")]

    def __str__(self) -> str:
        return f"{self.get_model_name_display()} for {self.user} at {self.created:%Y-%m-%d %H:%M}"


class APIToken(models.Model):
    """A bearer token for the JSON API. Only its sha256 is stored; the key is shown once.

    Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force,
    and a database leak reveals no usable key.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8, help_text="First characters of the key, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["APIToken", str]:
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:8], key_hash=cls.hash_key(key))
        return token, key

    @classmethod
    def user_for_key(cls, key: str):
        """The token's active user, or None; `last_used` is written at most once a LAST_USED_RESOLUTION.

        A write on every request was a second database transaction (and flush) per prediction.
        """
        token = cls.objects.select_related("user").filter(key_hash=cls.hash_key(key)).first()
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
            cls.objects.filter(pk=token.pk).update(last_used=now)
        return token.user
