"""HTML pages: thin views over the forms, the registry's status and the services."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .forms import FORMS
from .inputs import TABULAR_SCHEMAS
from .models import Prediction
from .registry import ModelUnavailable, get_loader

HISTORY_PAGE_SIZE = 20


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    loader = get_loader()
    states = {m["name"]: m for m in loader.status()["models"]}
    models = [{"spec": spec, "status": states[name]} for name, spec in loader.specs.items()]
    recent = Prediction.objects.filter(user=request.user, parent__isnull=True)[:5]
    return render(request, "dashboard.html", {"models": models, "recent": recent})


@login_required
@require_http_methods(["GET", "POST"])
def predict_page(request: HttpRequest, model: str) -> HttpResponse:
    spec = get_loader().spec(model)
    form_class = FORMS[model]
    status = 200
    error = None
    if request.method == "POST":
        form = form_class(request.POST, request.FILES)
        if form.is_valid():
            try:
                record = services.predict(request.user, form.prediction_requests(), source="web")
            except ModelUnavailable as exc:
                error, status = f"The {exc.name} model is unavailable right now: {exc.reason}", 503
            else:
                return redirect("prediction_detail", pk=record.pk)
        else:
            status = 400
    else:
        form = form_class()
    return render(request, "predict.html", {"form": form, "spec": spec, "error": error,
                                            "multipart": True}, status=status)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    records = Prediction.objects.filter(user=request.user, parent__isnull=True).prefetch_related("attachments")
    page = Paginator(records, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "history.html", {"page": page})


@login_required
@require_GET
def prediction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Prediction, pk=pk, user=request.user)
    results = [record, *record.attachments.all()]
    entries = []
    for item in results:
        schema = TABULAR_SCHEMAS.get(item.model_name)
        inputs = ([(f.label, f.describe(item.inputs.get(f.name))) for f in schema.fields] if schema else
                  [(key, value) for key, value in item.inputs.get("image", {}).items()])
        entries.append({"record": item, "inputs": inputs, "spec": get_loader().spec(item.model_name)})
    return render(request, "prediction_detail.html", {"record": record, "entries": entries,
                                                      "disclaimer": services.DISCLAIMER})


@login_required
@require_GET
def model_card(request: HttpRequest, model: str) -> HttpResponse:
    loader = get_loader()
    spec = loader.spec(model)
    try:
        card = loader.card(model)
    except ModelUnavailable as exc:
        return render(request, "error.html", {"title": f"{spec.title}: model unavailable", "message": exc.reason},
                      status=503)
    return render(request, "model_card.html", {"spec": spec, "card": card})


@login_required
@require_GET
def model_plot(request: HttpRequest, model: str, plot: str) -> FileResponse:
    loader = get_loader()
    try:
        relative = loader.card(model).get("plots", {})[plot]
    except (ModelUnavailable, KeyError):
        raise Http404("no such plot") from None
    path = (loader.artifacts_dir / model / relative).resolve()
    if not path.is_relative_to((loader.artifacts_dir / model).resolve()) or not path.is_file():
        raise Http404("no such plot")
    return FileResponse(path.open("rb"), content_type="image/png")
