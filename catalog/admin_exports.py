"""The admin's export actions: one export job for each brand in the selection, then the
exports page, where the operator follows the progress and downloads the file."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from catalog.exports import export_job_create
from catalog.models import Brand


def export_selection(
    modeladmin,
    request: HttpRequest,
    *,
    rows: Iterable[tuple[int, int]],
    kind: str,
    file_name: str,
) -> HttpResponse:
    """`rows` are (object id, brand id) of the selection, in the order the file lists them."""
    by_brand: dict[int, list[int]] = {}
    for pk, brand_id in rows:
        by_brand.setdefault(brand_id, []).append(pk)
    brands = Brand.objects.in_bulk(list(by_brand))
    for brand_id, ids in by_brand.items():
        export_job_create(
            user=request.user,
            brand=brands[brand_id],
            kind=kind,
            params={"ids": ids},
            file_name=file_name,
        )
    modeladmin.message_user(
        request,
        _("The export is being prepared; it can be downloaded here when it is ready."),
        messages.SUCCESS,
    )
    return redirect("admin:catalog_exportjob_changelist")
