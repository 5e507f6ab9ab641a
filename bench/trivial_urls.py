"""The page benchmark's URLconf: every real URL, plus `/__trivial__`, the baseline."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def trivial(request: HttpRequest) -> HttpResponse:
    # No template, no query, no session read: what remains is gunicorn + Django's request
    # handling and the whole middleware stack, the floor under every real page.
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("__trivial__", trivial),
    path("", include("config.urls")),
]
