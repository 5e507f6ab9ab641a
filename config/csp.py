"""django-csp's middleware, with the policy's header text built once per policy.

django-csp builds both headers (the policy and the report-only one) from the settings on
every response: two `build_policy` calls and two dataclass conversions, about a tenth of a
cached page's time. A response that carries no policy of its own (no `@csp_update` and the
like) and a request that took no nonce get the same text every time, so it is built once
per settings object (a test's `override_settings` makes a new one). Anything else goes
through django-csp as before."""

from __future__ import annotations

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

# What a view's decorators leave on its response for django-csp.
_PER_RESPONSE = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt",
    "_csp_exempt_ro",
)

_built: dict[tuple[int, int], tuple[str, str]] = {}


def _headers() -> tuple[str, str]:
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
    key = (id(policy), id(report_only))
    headers = _built.get(key)
    if headers is None:
        if len(_built) > 64:  # tests override the settings many times
            _built.clear()
        headers = _built[key] = (
            build_policy(**vars(PolicyParts())),
            build_policy(**vars(PolicyParts()), report_only=True),
        )
    return headers


class CSPMiddleware(BaseCSPMiddleware):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            settings.DEBUG
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _PER_RESPONSE)
        ):
            return super().process_response(request, response)
        policy, report_only = _headers()
        for header, text, setting in (
            (HEADER, policy, "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, report_only, "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            excluded = request.path_info.startswith(tuple(prefixes))
            if text and header not in response and not excluded:
                response[header] = text
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
