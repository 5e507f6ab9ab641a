"""The page benchmark's URLconf: every real URL, plus `/__trivial__`, the baseline."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def trivial(request: HttpRequest) -> HttpResponse:
    # No template, no query, no session read: what remains is gunicorn + Django's request
    # handling and the whole middleware stack, the floor under every real page.
    return HttpResponse("ok", content_type="text/plain")


@login_required
def trivial_signed_in(request: HttpRequest) -> HttpResponse:
    # The same, for a signed-in fan: the session read and the user's row, as every page
    # a fan posts to pays before its own work (the floor of the reserve POST).
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("__trivial__", trivial),
    path("__trivial_signed_in__", trivial_signed_in),
    path("", include("config.urls")),
]
