"""The test suite. Same engines as production (PostgreSQL, Redis); its own Redis database
numbers so a test's cache flush never touches a running dev server's cache or queue."""

import os

from .base import *  # noqa: F403
from .base import redis_settings

DEBUG = False
REDIS_DB_OFFSET = 8
globals().update(redis_settings(REDIS_DB_OFFSET))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never in prod
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks enqueued on commit run in-process; tests/test_celery_worker.py runs a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# pytest-xdist workers share the Redis databases: each keeps its own key prefix, and tests
# clear only their own keys (tests/conftest.py), never the whole database.
# FANHUB_TEST_RUN separates two suites run at once against the same Redis (each also gets
# its own DATABASE_URL, hence its own test database).
_worker = os.environ.get("FANHUB_TEST_RUN", "") + os.environ.get("PYTEST_XDIST_WORKER", "main")
CACHES["default"]["KEY_PREFIX"] = f"fanhub-test-{_worker}"  # noqa: F405
CACHES["sessions"]["KEY_PREFIX"] = f"fanhub-test-session-{_worker}"  # noqa: F405

# Serve static files from the app folders without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Tests create many posts per member; tests/test_communities.py lowers these to test them.
COMMUNITY_RATE_LIMITS = {"post": (10_000, 10_000), "comment": (10_000, 10_000)}

# A worker process started by a test (tests/test_preorder_worker_kill.py) works on the test
# database that pytest-django created, not on the one DATABASE_URL names.
if os.environ.get("FANHUB_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["FANHUB_TEST_DATABASE_NAME"]  # noqa: F405

# The browser journeys' worker (tests/e2e/conftest.py) shares files and mail with the live
# server in the test process: uploads on disk, mail written as files the journey opens.
if os.environ.get("FANHUB_TEST_MEDIA_ROOT"):
    MEDIA_ROOT = os.environ["FANHUB_TEST_MEDIA_ROOT"]
    STORAGES["default"] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if os.environ.get("FANHUB_TEST_MAIL_DIR"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["FANHUB_TEST_MAIL_DIR"]

# pytest-xdist workers share the Redis broker too: each sends to and consumes from its own
# queue, so a worker process started by one test never takes another's tasks.
CELERY_TASK_DEFAULT_QUEUE = f"fanhub-test-{_worker}"

# A tests-only feature on the commitments engine (tests/test_commitments_contract.py).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.commitments_fake"]  # noqa: F405
