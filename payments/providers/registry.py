from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.providers.base import PaymentProvider


@cache
def provider_get(name: str | None = None) -> PaymentProvider:
    """The provider named by PAYMENT_PROVIDER (or `name`)."""
    name = name or settings.PAYMENT_PROVIDER
    if name == "local":
        from payments.providers.local import LocalProvider

        return LocalProvider()
    if name == "stripe":
        from payments.providers.stripe_provider import StripeProvider

        return StripeProvider()
    raise ImproperlyConfigured(f"Unknown PAYMENT_PROVIDER {name!r}: use 'local' or 'stripe'")
