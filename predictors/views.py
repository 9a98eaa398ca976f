"""HTML pages: thin views over the forms, the registry's status, the services, selectors and view models."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from . import card_pages, presentation, selectors, services
from .busy import busy_page, files_with_held, refused, unavailable_page
from .forms import FORMS, HistoryFilterForm
from .inputs import TABULAR_SCHEMAS
from .http import error_page, error_response
from .models import Prediction
from .serving.registry import ModelUnavailable, get_loader
from .uploads import CappedMemoryUploadHandler

HISTORY_PAGE_SIZE = 20
RECENT_COUNT = 5


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    loader = get_loader()
    states = {m["name"]: m for m in loader.status()["models"]}
    models = [{"spec": spec, "status": states[name]} for name, spec in loader.specs.items()]
    recent = [(r, presentation.summaries(r)) for r in selectors.recent(request.user, RECENT_COUNT)]
    return render(request, "dashboard.html", {"models": models, "recent": recent})


@login_required
@csrf_exempt  # checked by _predict below, once the upload handler is in place
@require_http_methods(["GET", "POST"])
def predict_page(request: HttpRequest, model: str) -> HttpResponse:
    # Before anything reads the body: a file over the limit must arrive as a form error.
    request.upload_handlers = [CappedMemoryUploadHandler(request)]
    return _predict(request, model)


@csrf_protect
def _predict(request: HttpRequest, model: str) -> HttpResponse:
    """The form, or the result of submitting it, shown in this response with the image's thumbnail.

    The result is rendered here rather than after a redirect because the thumbnail is
    made from the upload in memory and never stored; the page then replaces its address
    with the result's own, so a reload shows the recorded result instead of posting again.
    """
    spec = get_loader().spec(model)
    form_class = FORMS[model]
    status = 200
    outside = None  # the image model whose validated domain an upload fell outside
    if request.method == "POST":
        if refused(request):  # no image slot came free in time (predictors/server/admission.py)
            return busy_page(request, form_class, spec)
        form = form_class(request.POST, files_with_held(request))
        if form.is_valid():
            requests = form.prediction_requests()
            try:
                record = services.predict(request.user, requests, source="web", reference=form.reference)
            except ModelUnavailable as exc:
                return unavailable_page(request, form, spec, exc)
            except services.OutsideDomain as exc:
                form.add_error(form.image_field_for(exc.model), "Outside what the model was validated on: see above. "
                                                                 "Nothing was recorded.")
                outside = {"spec": get_loader().spec(exc.model), "message": exc.message}
                status = exc.status
            else:
                # The thumbnails, the maps and the page each go through the submission's records: read once.
                prefetch_related_objects([record], "attachments")
                return _result_page(request, record, presentation.thumbnails_for(record, requests),
                                    presentation.activation_maps_for(record))
        else:
            status = 400
    else:
        form = form_class()
    return render(request, "predict.html", {"form": form, "spec": spec, "outside": outside},
                  status=status)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    filters = HistoryFilterForm(request.GET)
    # Filters that do not validate list nothing: the whole history under an error reads as filtered.
    records = selectors.history(request.user, **filters.criteria()) if filters.is_valid() else Prediction.objects.none()
    page = Paginator(records, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    rows = [(r, presentation.summaries(r)) for r in page.object_list]
    return render(request, "history.html", {"page": page, "rows": rows, "filters": filters, "query": query.urlencode(),
                                            "filtered": filters.is_filtering()})


@login_required
@require_GET
def prediction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # The page names the clinician, who is its user: read with the record, not after it.
    record = get_object_or_404(Prediction.objects.select_related("user"), pk=pk, user=request.user)
    if record.parent_id:  # an attached image's result is shown with the form it came with
        return redirect("prediction_detail", pk=record.parent_id)
    return _result_page(request, record, {})


def _result_page(request: HttpRequest, record: Prediction, thumbnails: dict[int, str],
                 activation_maps: dict[int, presentation.ActivationMap] | None = None) -> HttpResponse:
    results = presentation.result_views(record, thumbnails, activation_maps)
    context = {"record": record, "results": results, "just_made": request.method == "POST",
               "images_not_kept": presentation.images_not_kept(results)}
    return render(request, "prediction_detail.html", context)


@login_required
@require_GET
def model_card(request: HttpRequest, model: str) -> HttpResponse:
    loader = get_loader()
    spec = loader.spec(model)
    try:
        card = loader.card(model)
    except ModelUnavailable as exc:
        return error_page(request, exc, f"{spec.title}: model unavailable", exc.reason)
    summary = card_pages.summarise(card, spec)
    schema = TABULAR_SCHEMAS.get(model)
    return render(request, "model_card.html", {"spec": spec, "summary": summary,
                                               "diagnostic": schema.diagnostic if schema else ()})


@login_required
@require_GET
def model_card_json(request: HttpRequest, model: str) -> JsonResponse:
    try:
        card = get_loader().card(model)
    except ModelUnavailable as exc:
        return error_response(exc)
    return JsonResponse(card, json_dumps_params={"indent": 2, "ensure_ascii": False})


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


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and bookmarks ask for /favicon.ico whatever a page's <link rel=icon> says."""
    return redirect(static("favicon.ico"), permanent=True)
