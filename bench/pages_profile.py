"""Where a page's time goes, in process: each page of bench/pages.py requested through
django.test.Client (DEBUG off, the benchmark's data), timed over many requests, with its SQL
time and, with --profile, the functions that cost most under cProfile.

    python -m bench.pages_profile [--profile] [--requests N] [page ...]

Run `make bench BENCH=pages` once first: it creates the data this reads."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from accounts.models import User
    from bench import pages
    from catalog.models import Product

    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)

    product = Product.objects.filter(name__contains=" Studio Headphones ").order_by("id").first()
    member = User.objects.get(email=pages.MEMBER_EMAIL)
    chosen = [p for p in pages._pages(product.slug) if not args.names or p.name in args.names]
    settings.ALLOWED_HOSTS = ["*"]
    sql = [0.0, 0]

    def timed_sql(execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql[0] += time.perf_counter() - started
            sql[1] += 1

    with override_settings(ROOT_URLCONF=pages.URLCONF):
        member_client = Client()
        member_client.force_login(member)
        for page in chosen:
            client = member_client if page.member else Client()
            for _ in range(5):
                assert client.get(page.path).status_code == 200, page.path
            sql[:] = [0.0, 0]
            profile = cProfile.Profile() if args.profile else None
            with connection.execute_wrapper(timed_sql):
                started = time.perf_counter()
                if profile:
                    profile.enable()
                for _ in range(args.requests):
                    client.get(page.path)
                if profile:
                    profile.disable()
                total = (time.perf_counter() - started) / args.requests * 1000
            print(
                f"{page.name:<18} {total:7.2f} ms/request  SQL {sql[0] / args.requests * 1000:5.2f}"
                f" ms in {sql[1] / args.requests:4.1f} queries",
                flush=True,
            )
            if profile:
                stats = pstats.Stats(profile)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
