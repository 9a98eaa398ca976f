from django.urls import path

from . import api, converters, openapi, probes, token_views, views  # noqa: F401 (converters registers)


urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("predict/<any_model:model>/", views.predict_page, name="predict"),
    path("history/", views.history, name="history"),
    path("history/<int:pk>/", views.prediction_detail, name="prediction_detail"),
    path("models/<any_model:model>/", views.model_card, name="model_card"),
    path("models/<any_model:model>/card.json", views.model_card_json, name="model_card_json"),
    path("models/<any_model:model>/plots/<slug:plot>.png", views.model_plot, name="model_plot"),
    path("tokens/", token_views.api_tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", token_views.revoke_api_token, name="revoke_api_token"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("health/", probes.health, name="health"),
    path("ready/", probes.ready, name="ready"),
    path("status/", probes.status, name="status"),
    path("metrics", probes.metrics, name="metrics"),
    path("api/v1/predict/<tabular_model:model>", api.predict_tabular, name="api_predict_tabular"),
    path("api/v1/predict/<image_model:model>", api.predict_image, name="api_predict_image"),
    path("api/v1/openapi.json", openapi.document, name="openapi"),
]
