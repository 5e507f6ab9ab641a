"""Request guards that sit before every view.

PostgreSQL text cannot hold a NUL byte (psycopg raises "A string literal cannot contain NUL"),
and no form of ours wants other C0 control characters either, so a request carrying one in
its path, query string or form data is answered 400 here, once, instead of in every view."""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError

# C0 controls except tab, line feed and carriage return (which textareas legitimately send).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

# Endpoints that must read the raw body themselves (signature checks): never parse their form.
RAW_BODY_PATHS = ("/payments/stripe/webhook/",)

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

MESSAGE = "The request contains a control character (such as a NUL byte) that no field accepts."


def _has_control(values) -> bool:
    return any(CONTROL_CHARACTERS.search(value) for value in values)


def _query_values(request: HttpRequest) -> list[str]:
    return [item for key, values in request.GET.lists() for item in (key, *values)]


def _form_values(request: HttpRequest) -> list[str]:
    """Field names and values of a form post, and the names of its file fields (Django
    already strips control characters from uploaded file names; contents are the upload
    validators' business)."""
    values = [item for key, items in request.POST.lists() for item in (key, *items)]
    return values + list(request.FILES)


class ControlCharacterGuard:
    """400 for a NUL or other C0 control character in the path, query string or form post."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if CONTROL_CHARACTERS.search(request.path) or _has_control(_query_values(request)):
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        if self._is_form_post(request):
            try:
                values = _form_values(request)
            except MultiPartParserError:
                return HttpResponseBadRequest(
                    "The form data could not be read.", content_type="text/plain; charset=utf-8"
                )
            if _has_control(values):
                return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _is_form_post(request: HttpRequest) -> bool:
        if request.method != "POST" or request.path.startswith(RAW_BODY_PATHS):
            return False
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        return content_type in FORM_CONTENT_TYPES
