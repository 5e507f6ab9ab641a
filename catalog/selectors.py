"""Every non-trivial catalogue read, with its joins and prefetches, so pages keep a fixed
number of queries however many products they show."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db.models import F, Prefetch, Q, QuerySet, Value
from django.http import Http404

from catalog.models import Brand, Category, Product, ProductImage, ProductStatus, Variant
from catalog.search_words import corrections

SORTS = {
    "relevance": "Best match",
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
}


@dataclass(frozen=True)
class ProductFilters:
    q: str = ""
    brand: str = ""
    category: Category | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool = False
    sort: str = "relevance"


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")


def product_visible() -> QuerySet[Product]:
    return Product.objects.filter(status=ProductStatus.ACTIVE)


class ProductListingPaginator(Paginator):
    """Pages of a product listing whose total is kept in the cache for a minute per query.
    Counting every matching product is most of a listing's SQL time (18 of 26 ms for
    /products/ at 100,000 products), while a total that lags a minute behind the catalogue
    only moves the last page's end."""

    count_seconds = 60

    @cached_property
    def count(self) -> int:
        try:
            sql = str(self.object_list.query)
        except EmptyResultSet:
            return 0
        key = "catalog:listing-count:" + hashlib.sha256(sql.encode()).hexdigest()[:32]
        return cache.get_or_set(key, self.object_list.count, self.count_seconds)


def _first_image_prefetch() -> Prefetch:
    return Prefetch(
        "images", queryset=ProductImage.objects.order_by("position", "id"), to_attr="ordered_images"
    )


def product_cards(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """What a product card needs: brand name and the images (first one shown). The long
    columns are left out: a ranked search sorts every match's whole row for its top 24."""
    return (
        queryset.select_related("brand")
        .defer("description", "description_html", "search_vector")
        .prefetch_related(_first_image_prefetch())
    )


def search_query(words: list[str]) -> SearchQuery:
    """The full-text query for these words: as typed (web search syntax: quotes, -word, or)
    when the dictionary knows every word, else each word OR its corrections, all ANDed."""
    alternatives = corrections(words)
    if all(len(options) == 1 for options in alternatives):
        return SearchQuery(" ".join(words), search_type="websearch", config="english")
    query = None
    for options in alternatives:
        either = None
        for option in options:
            term = SearchQuery(option, search_type="plain", config="english")
            either = term if either is None else either | term
        query = either if query is None else query & either
    return query


def product_search(filters: ProductFilters) -> QuerySet[Product]:
    """Search and filters for /products/.

    Whole words first: PostgreSQL full-text search (English stemming), ranked by where the
    words occur (name, then brand and category, then description), each mistyped word
    standing for the catalogue's words within its typo budget (catalog.search_words: "fogre"
    searches for forge, "haedphones" for headphones). Only when no product
    matches every word does it fall back to trigram word similarity, word by word, so that a
    typo ("headphnes") still finds the product. Both use GIN indexes; keeping the trigram
    pass for the misses keeps common words fast (see bench/search.py)."""
    queryset = product_visible()
    if filters.brand:
        queryset = queryset.filter(brand__slug=filters.brand)
    if filters.category is not None:
        queryset = queryset.filter(
            Q(category=filters.category) | Q(category__path__startswith=f"{filters.category.path}/")
        )
    if filters.price_min is not None:
        queryset = queryset.filter(price_max__gte=filters.price_min)
    if filters.price_max is not None:
        queryset = queryset.filter(price_min__lte=filters.price_max)
    if filters.in_stock:
        queryset = queryset.filter(in_stock=True)

    sort = filters.sort if filters.sort in SORTS else "relevance"
    words = filters.q.lower().split()[:8]
    if words:
        query = search_query(words)
        whole_words = queryset.filter(search_vector=query)
        if whole_words.exists():
            queryset = whole_words.annotate(rank=SearchRank(F("search_vector"), query))
        else:
            for word in words:
                queryset = queryset.filter(search_text__trigram_word_similar=word)
            similarity = sum(
                (TrigramWordSimilarity(Value(word), "search_text") for word in words[1:]),
                TrigramWordSimilarity(Value(words[0]), "search_text"),
            )
            queryset = queryset.annotate(rank=similarity)
    elif sort == "relevance":
        sort = "newest"
    order = {
        "relevance": ["-rank", "-id"],
        "newest": ["-created_at", "-id"],
        "price_asc": [F("price_min").asc(nulls_last=True), "-id"],
        "price_desc": [F("price_min").desc(nulls_last=True), "-id"],
    }[sort]
    return product_cards(queryset).order_by(*order)


def category_by_path(path: str) -> Category:
    category = Category.objects.filter(path=path.strip("/")).first()
    if category is None:
        raise Http404("No such category")
    return category


def category_breadcrumbs(category: Category) -> list[Category]:
    return list(Category.objects.filter(path__in=category.ancestor_paths()).order_by("depth"))


def category_tree() -> list[Category]:
    """All categories in tree order (parents before children), with depth for indenting."""
    return list(Category.objects.order_by("path"))


def category_children(category: Category | None) -> QuerySet[Category]:
    return Category.objects.filter(parent=category).order_by("position", "name")


@dataclass
class ProductPage:
    product: Product
    variants: list[Variant]
    options: dict[str, list[str]] = field(default_factory=dict)
    breadcrumbs: list[Category] = field(default_factory=list)


def product_page(*, slug: str) -> ProductPage:
    """A visible product with everything its page shows; Http404 for drafts and archived."""
    product = (
        product_visible()
        .select_related("brand", "category")
        .prefetch_related(
            _first_image_prefetch(),
            "specifications",
            Prefetch(
                "variants",
                queryset=Variant.objects.filter(is_active=True).order_by("position", "id"),
                to_attr="active_variants",
            ),
        )
        .filter(slug=slug)
        .first()
    )
    if product is None:
        raise Http404("No such product")
    variants = product.active_variants
    for variant in variants:
        variant.product = product  # spares a query per variant in __str__
    return ProductPage(
        product=product,
        variants=variants,
        options=variant_options(variants),
        breadcrumbs=category_breadcrumbs(product.category),
    )


def variant_options(variants: list[Variant]) -> dict[str, list[str]]:
    """Option name -> its values, in the order the variants list them."""
    options: dict[str, list[str]] = {}
    for variant in variants:
        for name, value in variant.option_map.items():
            values = options.setdefault(name, [])
            if str(value) not in values:
                values.append(str(value))
    return options


def variant_choose(
    variants: list[Variant], *, variant_id: str | None = None, chosen: dict[str, str] | None = None
) -> Variant | None:
    """The variant a shopper picked: by id, else the one matching the most chosen options
    (ties go to the first in stock), else the first available one."""
    if not variants:
        return None
    if variant_id:
        for variant in variants:
            if str(variant.pk) == variant_id:
                return variant
    if chosen:

        def score(variant: Variant) -> tuple[int, bool]:
            matches = sum(variant.option_map.get(k) == v for k, v in chosen.items())
            return matches, variant.is_available

        return max(variants, key=score)
    return next((v for v in variants if v.is_available), variants[0])


def product_cards_version(products) -> str:
    """A key for a rendered grid of product cards: it changes whenever anything a card shows
    changes (name, price range, stock, rating, first picture and its thumbnail)."""
    parts = []
    for product in products:
        image = product.ordered_images[0] if product.ordered_images else None
        parts.append(
            f"{product.pk}:{product.updated_at.timestamp()}:{product.price_min}:"
            f"{product.price_max}:{product.in_stock}:{product.rating_average}:"
            f"{product.rating_count}:{image.pk if image else ''}:"
            f"{bool(image and image.thumbnail_small)}:{product.brand.name}"
        )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
