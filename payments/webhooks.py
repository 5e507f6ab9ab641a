"""Stripe's webhook endpoint. The signature is checked against the raw body before anything is
read from it; the event id and its effect are recorded together by the service."""

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.providers.base import WebhookSignatureError
from payments.providers.registry import provider_get
from payments.services import webhook_event_apply

logger = logging.getLogger(__name__)


@csrf_exempt  # Stripe signs the body instead; it cannot send our CSRF token
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        event = provider_get("stripe").webhook_parse(
            payload=request.body, signature=request.META.get("HTTP_STRIPE_SIGNATURE", "")
        )
    except WebhookSignatureError as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        return JsonResponse({"error": "Invalid signature or payload."}, status=400)
    applied = webhook_event_apply(provider_name="stripe", event=event)
    return JsonResponse({"received": True, "applied": applied})
