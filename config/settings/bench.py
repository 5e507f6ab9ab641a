"""Benchmarks (`make bench`): production-like (DEBUG off) on a database of their own, so the
generated 100,000 products never mix with the demo data; and Redis databases of their own
(4-6), so the workers a benchmark starts never take a dev server's queued tasks, nor a dev
worker the benchmark's."""

from .base import *  # noqa: F403
from .base import DATABASES, env, redis_settings

DEBUG = False
ALLOWED_HOSTS = ["*"]
# BENCH_DATABASE: another name, so two people benchmarking at once do not share the data.
DATABASES["default"]["NAME"] = env("BENCH_DATABASE", default="fanhub_bench")
REDIS_DB_OFFSET = 4
globals().update(redis_settings(REDIS_DB_OFFSET))
# ... nor the cached fragments, which name rows by id.
CACHES["default"]["KEY_PREFIX"] = f"fanhub-{DATABASES['default']['NAME']}"  # noqa: F405
