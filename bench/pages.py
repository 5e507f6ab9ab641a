"""Page throughput at 100,000 products: each page served by gunicorn (2 sync workers, DEBUG
off) and loaded with wrk, against `/__trivial__` (a Django view returning "ok" through the
whole middleware stack) on the same server in the same run; plus the SQL queries each page
runs, counted in-process."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.models import User
from bench import search
from bench.runner import Figure, compared
from catalog.models import Product, Variant
from catalog.services import variant_save
from communities.models import Community, Membership
from communities.services import comment_create, post_create, post_like_toggle
from orders.models import Cart
from orders.services import cart_add
from payments.services import card_save
from preorders.models import BatchStatus, PreorderBatch, PriceTier, Reservation
from reviews.models import Review
from reviews.services import review_save

BASE_DIR = Path(__file__).resolve().parent.parent
MEMBER_EMAIL = "bench@fans.example"
REVIEWS = 20
COLOURS = ["Black", "White", "Blue"]
WORKERS = 2
THREADS, CONNECTIONS, SECONDS, WARMUP_SECONDS, RUNS = 2, 8, 5, 2, 3
URLCONF = "bench.trivial_urls"
SIGNED_IN_MARKER = b"Sign out"  # base.html shows it only to a signed-in user

# wrk prints 50/75/90/99% only; the `done` hook gives p95 and the error counts as well.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH p95_us=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d\\n",
    latency:percentile(95), e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    member: bool = False


@dataclass(frozen=True)
class Load:
    rps: float
    p95_ms: float


COMMUNITY_SLUG = "bench-fans"
BATCH_SLUG = "bench-batch"
BATCH_RESERVATIONS = 300


def _pages(product_slug: str) -> list[Page]:
    """All pages, or those BENCH_PAGES names (comma-separated; the trivial view always)."""
    chosen = {name for name in os.environ.get("BENCH_PAGES", "").split(",") if name}
    return [
        page
        for page in _all_pages(product_slug)
        if not chosen or page.name in chosen or page.name == "trivial"
    ]


def _all_pages(product_slug: str) -> list[Page]:
    return [
        Page("trivial", "/__trivial__"),
        Page("home", "/"),
        Page("products", "/products/"),
        Page("search", "/products/?q=studio+headphones"),
        Page("search_typo", "/products/?q=studo+headphnes"),
        Page("product", f"/products/{product_slug}/"),
        Page("home_member", "/", member=True),
        Page("products_member", "/products/", member=True),
        Page("product_member", f"/products/{product_slug}/", member=True),
        Page("cart_member", "/cart/", member=True),
        Page("orders_member", "/orders/", member=True),
        Page("community", f"/c/{COMMUNITY_SLUG}/"),
        Page("community_member", f"/c/{COMMUNITY_SLUG}/", member=True),
        Page("preorder", f"/preorders/{BATCH_SLUG}/"),
        Page("preorder_member", f"/preorders/{BATCH_SLUG}/", member=True),
    ]


# --- data ----------------------------------------------------------------------------------


def _verified_user(email: str, display_name: str) -> User:
    user, created = User.objects.get_or_create(email=email, defaults={"display_name": display_name})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def _ensure_data() -> tuple[Product, User]:
    """The search benchmark's 100,000 products, one of them (a "Studio Headphones", so search
    finds it too) with 3 variants and 20 reviews, and a verified fan with it in their cart.
    An existing product is used, not a new one: search.run() regenerates on any other count."""
    call_command("migrate", verbosity=0)
    if Product.objects.count() != search.PRODUCTS:
        print(f"  generating {search.PRODUCTS:,} products (once)...", flush=True)
        search._generate()
    product = Product.objects.filter(name__contains=" Studio Headphones ").order_by("id").first()
    assert product is not None, "the generated catalogue has no Studio Headphones"
    for position, colour in enumerate(COLOURS):
        sku = f"BENCH-{product.slug}-{colour}".upper()
        if not Variant.objects.filter(sku=sku).exists():
            variant_save(
                variant=Variant(
                    product=product,
                    sku=sku,
                    options={"colour": colour},
                    price=Decimal("149.00") + 10 * position,
                    stock=50,
                    position=position,
                )
            )
    for n in range(REVIEWS):
        reviewer = _verified_user(f"bench-reviewer-{n}@fans.example", f"Reviewer {n}")
        if not Review.objects.filter(product=product, user=reviewer).exists():
            review_save(
                product=product,
                user=reviewer,
                rating=5 - n % 4,
                title=f"Review number {n}",
                body="Solid sound, comfortable for hours. **Would buy again.**\n\n" * 3,
            )
    member = _verified_user(MEMBER_EMAIL, "Bench Fan")
    _ensure_community(member)
    _ensure_batch(product, member)
    cart, _ = Cart.objects.get_or_create(user=member)
    if not cart.lines.exists():
        cart_add(cart=cart, variant=product.variants.order_by("position").first(), quantity=1)
    product.refresh_from_db()
    return product, member


def _ensure_community(member: User) -> None:
    """A public community of 50 members with 60 posts (a full first page of the feed and
    more), each liked and commented, the bench fan among the members."""
    if Community.objects.filter(slug=COMMUNITY_SLUG).exists():
        return
    community = Community.objects.create(name="Bench Fans", slug=COMMUNITY_SLUG, kind="hobby")
    people = [member] + [
        _verified_user(f"bench-member-{n}@fans.example", f"Member {n}") for n in range(49)
    ]
    Membership.objects.bulk_create([Membership(community=community, user=user) for user in people])
    for n in range(60):
        author = people[n % len(people)]
        post = post_create(
            community=community,
            author=author,
            title=f"Post number {n}",
            body="What do you think of the **new colours**?\n\n" * 3,
            rate_limited=False,
        )
        comment_create(
            post=post, author=people[(n + 1) % len(people)], body="Love it", rate_limited=False
        )
        post_like_toggle(post=post, user=people[(n + 2) % len(people)])


def _ensure_batch(product: Product, member: User) -> None:
    """An open pre-order batch of the product with a 3-tier ladder and 300 reservations, the
    bench fan among the reservers. Its window is moved forward on every run."""
    now = timezone.now()
    batch = PreorderBatch.objects.filter(slug=BATCH_SLUG).first()
    if batch is not None:
        PreorderBatch.objects.filter(pk=batch.pk).update(
            opens_at=now - timedelta(days=1), closes_at=now + timedelta(days=5)
        )
        return
    batch = PreorderBatch.objects.create(
        product=product,
        title="Studio Headphones, first batch",
        slug=BATCH_SLUG,
        status=BatchStatus.OPEN,
        opens_at=now - timedelta(days=1),
        closes_at=now + timedelta(days=5),
        min_quantity=500,
        cap=2000,
        estimated_ship_date=(now + timedelta(days=60)).date(),
    )
    PriceTier.objects.bulk_create(
        [
            PriceTier(batch=batch, min_quantity=q, unit_price=Decimal(p))
            for q, p in ((1, "149.00"), (500, "129.00"), (1000, "119.00"))
        ]
    )
    card = card_save(
        user=member,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    )
    variant = product.variants.order_by("position").first()
    people = [member] + [
        _verified_user(f"bench-member-{n}@fans.example", f"Member {n}") for n in range(49)
    ]
    Reservation.objects.bulk_create(
        [
            Reservation(
                batch=batch,
                user=people[n % len(people)],
                variant=variant,
                quantity=1,
                saved_card=card,
                request_key=f"bench-{n}",
                ship_name="Bench Fan",
                ship_line1="1 Bench Street",
                ship_city="Springfield",
                ship_postal_code="12345",
                ship_country="US",
            )
            for n in range(BATCH_RESERVATIONS)
        ]
    )
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=BATCH_RESERVATIONS)


# --- queries per request (in-process) -------------------------------------------------------


def _queries(page: Page, client: Client) -> int:
    with override_settings(ROOT_URLCONF=URLCONF):
        client.get(page.path)  # warm per-process caches, as the served workers are
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path)
    assert response.status_code == 200, f"{page.path}: HTTP {response.status_code}"
    return len(captured)


# --- the server and the load ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_env() -> dict[str, str]:
    """The servers this process uses, passed explicitly: gunicorn must neither start embedded
    servers of its own nor register as their client."""
    from config import embedded

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        # base.py's own rule; bench settings then switch the database name to fanhub_bench.
        "DATABASE_URL": os.environ.get("DATABASE_URL") or embedded.database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }


def _get(port: int, path: str, cookie: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "bench.trivial_wsgi:application",
        *("-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--chdir", str(BASE_DIR)),
    ]
    with open(log, "wb") as out:
        server = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            command, env=_server_env(), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if _get(port, "/__trivial__", None)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"gunicorn did not answer in 60 s:\n{log.read_text()[-3000:]}")


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()  # the master stops its workers gracefully
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wrk(wrk: str, url: str, cookie: str | None, seconds: int, script: Path) -> Load:
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script)]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(  # noqa: S603 - wrk from PATH, fixed arguments
        [*command, url], capture_output=True, text=True, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(
        r"BENCH p95_us=([\d.]+) non2xx=(\d+) connect=(\d+) read=(\d+) "
        r"write=(\d+) timeout=(\d+)",
        out,
    )
    assert rps and done, f"unexpected wrk output:\n{out}"
    # A failing page is fast: any error status or timeout makes the figure worthless.
    if int(done.group(2)) or int(done.group(6)):
        raise RuntimeError(f"{url}: errors under load:\n{out}")
    return Load(float(rps.group(1)), float(done.group(1)) / 1000)


def _ensure_wrk() -> str | None:
    if shutil.which("wrk") is None:
        print("  installing wrk (apt-get)...", flush=True)
        installed = subprocess.run(  # noqa: S603 - Debian's package manager, fixed arguments
            ["apt-get", "install", "-y", "-q", "wrk"],  # noqa: S607
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            print(f"  apt-get install wrk failed:\n{installed.stderr[-1500:]}", flush=True)
    return shutil.which("wrk")


def _load(page: Page, wrk: str, port: int, cookie: str | None, script: Path) -> Load:
    url = f"http://127.0.0.1:{port}{page.path}"
    status, body = _get(port, page.path, cookie)
    # A redirect to the login page would load fine and measure the wrong page.
    if status != 200 or (SIGNED_IN_MARKER in body) != page.member:
        raise RuntimeError(f"{page.path}: HTTP {status}, signed in: {SIGNED_IN_MARKER in body}")
    _wrk(wrk, url, cookie, WARMUP_SECONDS, script)
    runs = [_wrk(wrk, url, cookie, SECONDS, script) for _ in range(RUNS)]
    return Load(
        statistics.median(run.rps for run in runs), statistics.median(run.p95_ms for run in runs)
    )


# --- figures --------------------------------------------------------------------------------


def run() -> dict[str, Figure]:
    product, member = _ensure_data()
    pages = _pages(product.slug)
    # {% static %} with the manifest storage raises for a file missing from the manifest.
    call_command("collectstatic", interactive=False, verbosity=0)

    member_client = Client()
    member_client.force_login(member)
    session_cookie = settings.SESSION_COOKIE_NAME
    cookie = f"{session_cookie}={member_client.cookies[session_cookie].value}"
    queries = {
        page.name: _queries(page, member_client if page.member else Client()) for page in pages
    }

    scale = (
        f"{search.PRODUCTS:,} products, product page with {len(COLOURS)} variants and "
        f"{REVIEWS} reviews"
    )
    figures: dict[str, Figure] = {}
    for page in pages:
        who = "signed in" if page.member else "anonymous"
        figures[f"pages.{page.name}.queries"] = compared(
            queries[page.name],
            queries["trivial"],
            "queries",
            f"SQL queries per request of GET {page.path} ({who}), django.test.Client in-process "
            f"after one warm-up request; {scale}; baseline: /__trivial__",
        )

    wrk = _ensure_wrk()
    if wrk is None:
        print("  wrk is not available: page throughput figures skipped", flush=True)
        return figures

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="fanhub-pages-") as tmp:
        script, log = Path(tmp) / "p95.lua", Path(tmp) / "gunicorn.log"
        script.write_text(WRK_SCRIPT)
        server = _start_server(port, log)
        try:
            loads: dict[str, Load] = {}
            for page in pages:
                print(f"  loading {page.name} ({page.path})...", flush=True)
                try:
                    loads[page.name] = _load(
                        page, wrk, port, cookie if page.member else None, script
                    )
                except RuntimeError as exc:  # errors or timeouts: no figure, the others stand
                    print(f"  {page.name}: no figure, {str(exc)[:200]}", flush=True)
        finally:
            _stop_server(server)

    base = loads["trivial"]
    for page in pages:
        if page.name not in loads:
            continue
        load, who = loads[page.name], "signed in" if page.member else "anonymous"
        note = (
            f"GET {page.path} ({who}): wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s after a "
            f"{WARMUP_SECONDS} s warm-up, median of {RUNS} runs; gunicorn {WORKERS} sync "
            f"workers, DEBUG off, wrk on the same {os.cpu_count()}-CPU machine; {scale}; "
            "baseline: /__trivial__, a Django view returning 'ok' through the whole middleware "
            "stack, same server, same run"
        )
        rps = compared(load.rps, base.rps, "per_s", note)
        figures[f"pages.{page.name}.rps"] = rps
        figures[f"pages.{page.name}.p95_ms"] = compared(load.p95_ms, base.p95_ms, "ms", note)
        figures[f"pages.{page.name}.rps_ratio_vs_trivial"] = Figure(
            rps.ratio or 0.0, "ratio", 1.0, rps.ratio, note
        )
    return dict(sorted(figures.items()))
