"""Production: real servers named by the environment, HTTPS only. Refuses to start without
the variables below, so it can never fall back to the embedded development services or the
development secret key."""

import os

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "SITE_URL")
_missing = [name for name in _REQUIRED if not os.environ.get(name)]
if _missing:
    raise ImproperlyConfigured(f"production settings need these variables: {', '.join(_missing)}")

from .base import *  # noqa: E402, F403
from .base import SECRET_KEY, TRUSTED_PROXY_COUNT, env  # noqa: E402

if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured("SECRET_KEY must be a long random value in production")

DEBUG = False
# Proxy headers are believed only from proxies we were told about (TRUSTED_PROXY_COUNT, also
# what the client address is read from): behind a load balancer that terminates TLS, set
# TRUSTED_PROXY_COUNT=1 and have it set X-Forwarded-Proto; with 0 nothing a client sends can
# pass for HTTPS or for another address.
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_SAMESITE = "Lax"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
STORAGES = {
    "default": {
        "BACKEND": env(
            "DEFAULT_FILE_STORAGE", default="django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
