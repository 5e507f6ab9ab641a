from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    # The feature issues fill these through their apps' selectors.
    context = {"featured_communities": [], "open_batches": [], "live_campaigns": []}
    return render(request, "home.html", context)
