"""Search latency at 100,000 products: ranked full-text + trigram search (what /products/?q=
runs) against a naive icontains filter over the same fields, on the same queries, in the same
run. Each query is timed the way the page uses it: the first page of 24 and the count."""

from __future__ import annotations

import random
import statistics

from django.core.management import call_command
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q

from bench.runner import Figure, compared, percentile, timed
from catalog.models import Brand, Category, Product, ProductStatus
from catalog.selectors import ProductFilters, product_search
from catalog.services import category_save, product_refresh_search

PRODUCTS = 100_000
QUERIES = 200
RUNS = 3
WARMUP = 20
SEED = 20261123

ADJECTIVES = [
    "Studio",
    "Trail",
    "Urban",
    "Pro",
    "Lite",
    "Ultra",
    "Classic",
    "Nova",
    "Pulse",
    "Aero",
    "Vivid",
    "Quiet",
    "Bold",
    "Prime",
    "Zen",
    "Swift",
    "Core",
    "Max",
    "Mini",
    "Solar",
]
NOUNS = [
    "Headphones",
    "Earbuds",
    "Speaker",
    "Phone",
    "Watch",
    "Band",
    "Charger",
    "Case",
    "Tablet",
    "Keyboard",
    "Mouse",
    "Camera",
    "Lamp",
    "Backpack",
    "Bottle",
    "Jacket",
    "Sneakers",
    "Blender",
    "Kettle",
    "Router",
]
BRANDS = [
    "Nimbus",
    "Forge",
    "Lumen",
    "Arcadia",
    "Kestrel",
    "Orbit",
    "Pinecone",
    "Quasar",
    "Riverton",
    "Saffron",
    "Tundra",
    "Umbra",
    "Vertex",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
    "Boreal",
    "Cobalt",
    "Dune",
]
CATEGORIES = [
    "Audio",
    "Phones",
    "Wearables",
    "Home",
    "Outdoor",
    "Computing",
    "Kitchen",
    "Fashion",
    "Photo",
    "Accessories",
]


def _typo(word: str, rng: random.Random) -> str:
    """One slip past the first two letters: a dropped letter or two letters swapped."""
    i = rng.randrange(2, len(word) - 1)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _generate() -> None:
    rng = random.Random(SEED)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_product, catalog_brand, catalog_category CASCADE")
    brands = [Brand.objects.create(name=name, slug=name.lower()) for name in BRANDS]
    categories = [
        category_save(category=Category(name=name, slug=name.lower())) for name in CATEGORIES
    ]
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            "COPY catalog_product (brand_id, category_id, name, slug, description, "
            "description_html, status, created_at, updated_at, price_min, price_max, in_stock, "
            "rating_average, rating_count, search_text) FROM STDIN"
        ) as copy,
    ):
        for n in range(PRODUCTS):
            adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
            brand = rng.choice(brands)
            name = f"{brand.name} {adjective} {noun} {n}"
            description = (
                f"The {adjective.lower()} {noun.lower()} from {brand.name}, "
                f"model {n}, designed with fans."
            )
            price = f"{rng.randint(5, 1500)}.00"
            copy.write_row(
                (
                    brand.pk,
                    rng.choice(categories).pk,
                    name,
                    f"p-{n}",
                    description,
                    f"<p>{description}</p>",
                    ProductStatus.ACTIVE,
                    "2026-01-01",
                    "2026-01-01",
                    price,
                    price,
                    rng.random() > 0.2,
                    0,
                    0,
                    "",
                )
            )
    product_refresh_search()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")


def _queries() -> list[tuple[str, str]]:
    """(query, kind): one word, brand + noun, and adjective + noun with one typo in the
    noun (a realistic slip; two typos in two short words defeat any trigram search)."""
    rng = random.Random(SEED + 1)
    queries = []
    for n in range(QUERIES):
        noun, brand, adjective = rng.choice(NOUNS), rng.choice(BRANDS), rng.choice(ADJECTIVES)
        kind = ["word", "two_words", "typo"][n % 3]
        query = {
            "word": noun.lower(),
            "two_words": f"{brand} {noun}".lower(),
            "typo": f"{adjective} {_typo(noun, rng)}".lower(),
        }[kind]
        queries.append((query, kind))
    return queries


def _ranked(query: str) -> tuple[list[Product], int]:
    page = Paginator(product_search(ProductFilters(q=query)), 24).get_page(1)
    return list(page.object_list), page.paginator.count


def _naive(query: str) -> tuple[list[Product], int]:
    condition = Q()
    for word in query.split():
        condition &= (
            Q(name__icontains=word)
            | Q(description__icontains=word)
            | Q(brand__name__icontains=word)
            | Q(category__name__icontains=word)
        )
    queryset = (
        Product.objects.filter(status=ProductStatus.ACTIVE)
        .filter(condition)
        .select_related("brand")
        .order_by("-created_at", "-id")
    )
    page = Paginator(queryset, 24).get_page(1)
    return list(page.object_list), page.paginator.count


def _swapped(word: str) -> str:
    """Two neighbouring letters swapped past the first: "forge" -> "fogre"."""
    i = len(word) // 2
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _swap_queries() -> list[tuple[str, str]]:
    """(query, the word it was typed for): every brand and noun of 5+ letters with two
    letters swapped, the slip a search engine forgives as one typo."""
    return [(_swapped(w.lower()), w) for w in BRANDS + NOUNS if len(w) >= 5]


def _found(query: str, word: str) -> bool:
    products, _ = _ranked(query)
    return bool(products) and all(word.lower() in p.search_text for p in products)


def run() -> dict[str, Figure]:
    call_command("migrate", verbosity=0)
    if Product.objects.count() != PRODUCTS:
        print(f"  generating {PRODUCTS:,} products (once)...", flush=True)
        _generate()
    queries = _queries()
    for query, _ in queries[:WARMUP]:
        _ranked(query)
        _naive(query)
    ranked_ms = [timed(lambda q=q: _ranked(q), runs=RUNS) for q, _ in queries]
    naive_ms = [timed(lambda q=q: _naive(q), runs=RUNS) for q, _ in queries]

    swaps = _swap_queries()
    swap_ms = [timed(lambda q=q: _ranked(q), runs=RUNS) for q, _ in swaps]
    swaps_found = sum(_found(q, word) for q, word in swaps) / len(swaps)
    exact_found = sum(_found(word.lower(), word) for _, word in swaps) / len(swaps)

    typo_queries = [q for q, kind in queries if kind == "typo"]
    ranked_found = sum(_ranked(q)[1] > 0 for q in typo_queries) / len(typo_queries)
    naive_found = sum(_naive(q)[1] > 0 for q in typo_queries) / len(typo_queries)
    median_ranked, median_naive = statistics.median(ranked_ms), statistics.median(naive_ms)
    p95_ranked, p95_naive = percentile(ranked_ms, 0.95), percentile(naive_ms, 0.95)
    note = (
        f"{PRODUCTS:,} products, {QUERIES} queries (words, brand+noun, typos), first page "
        f"of 24 + count, median of {RUNS} runs per query; baseline: icontains over name, "
        "description, brand and category"
    )
    return {
        "search.ranked.median_ms": compared(median_ranked, median_naive, "ms", note),
        "search.ranked.p95_ms": compared(p95_ranked, p95_naive, "ms", note),
        "search.swapped_letters_found": compared(
            swaps_found * 100,
            exact_found * 100,
            "percent",
            f"share of {len(swaps)} one-word queries with two neighbouring letters swapped "
            "(every brand and noun of 5+ letters: 'fogre', 'haedphones') whose first page "
            "shows only products with the intended word; baseline: the same words typed right",
        ),
        "search.swapped_letters.p95_ms": compared(
            percentile(swap_ms, 0.95),
            p95_ranked,
            "ms",
            f"{PRODUCTS:,} products, the {len(swaps)} swapped-letter queries, first page of "
            f"24 + count, median of {RUNS} runs per query; baseline: p95 of all queries",
        ),
        "search.typo_queries_with_results": compared(
            ranked_found * 100,
            naive_found * 100,
            "percent",
            "share of typo queries that return any product; baseline: icontains",
        ),
    }
