"""What gunicorn serves in the page benchmark (`bench.trivial_wsgi:application`): the real
application with `bench.trivial_urls` as the URLconf, so the baseline and the pages are
measured on the same server. Kept out of bench/pages.py so that importing the benchmark never
changes the URLconf of the process that runs it."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

django.setup(set_prefix=False)
# Read per request by the resolver, so setting it after setup() is enough.
settings.ROOT_URLCONF = "bench.trivial_urls"
application = WSGIHandler()
