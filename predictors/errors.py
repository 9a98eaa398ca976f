"""Error pages: JSON in the API's error shape under /api/, HTML elsewhere."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .http import error_response, json_path


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if json_path(request.path):
        return error_response(404, "not_found", "No such endpoint.")
    return render(request, "error.html", {"title": "Not found", "message": "There is no page at this address."},
                  status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if json_path(request.path):
        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return render(request, "error.html", {"title": "Server error",
                                          "message": "Something went wrong on our side; it has been logged."},
                  status=500)
