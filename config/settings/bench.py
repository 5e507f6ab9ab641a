"""Benchmarks (`make bench`): production-like (DEBUG off) on a database of their own, so the
generated 100,000 products never mix with the demo data; and Redis databases of their own
(4-6), so the workers a benchmark starts never take a dev server's queued tasks, nor a dev
worker the benchmark's."""

from .base import *  # noqa: F403
from .base import DATABASES, redis_settings

DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES["default"]["NAME"] = "fanhub_bench"
REDIS_DB_OFFSET = 4
globals().update(redis_settings(REDIS_DB_OFFSET))
