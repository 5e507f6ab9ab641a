"""Benchmarks (`make bench`): production-like (DEBUG off) on a database of their own, so the
generated 100,000 products never mix with the demo data."""

from .base import *  # noqa: F403
from .base import DATABASES

DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES["default"]["NAME"] = "fanhub_bench"
