from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from catalog.selectors import brand_list


def brand_detail(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(brand_list(), slug=slug)
    return render(request, "catalog/brand_detail.html", {"brand": brand})
