from django.contrib import admin

from .models import APIToken, Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("created", "user", "model_name", "model_version", "latency_ms", "source")
    list_filter = ("model_name", "source", "created")
    search_fields = ("user__username", "model_version")
    readonly_fields = [f.name for f in Prediction._meta.fields]
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created", "last_used")
    readonly_fields = ("prefix", "key_hash", "created", "last_used")
    search_fields = ("user__username", "name", "prefix")

    def has_add_permission(self, request) -> bool:
        return False  # keys are issued with `manage.py apitoken`, which shows the key once
