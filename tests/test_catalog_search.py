from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import ProductStatus, Variant
from catalog.selectors import ProductFilters, product_search
from config.page_cache import page_cache_forget
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def _names(queryset) -> list[str]:
    return [product.name for product in queryset]


@pytest.fixture
def audio():
    forge = BrandFactory(name="Forge Audio", slug="forge-audio")
    nimbus = BrandFactory(name="Nimbus Mobile", slug="nimbus-mobile")
    audio = CategoryFactory(name="Audio", slug="audio")
    headphones = CategoryFactory(name="Headphones", slug="headphones", parent=audio)
    phones = CategoryFactory(name="Phones", slug="phones")
    studio = ProductFactory(
        name="Forge Studio Headphones",
        slug="studio",
        brand=forge,
        category=headphones,
        description="Closed-back, for long sessions.",
    )
    VariantFactory(product=studio, price=Decimal("199.00"), stock=3)
    buds = ProductFactory(
        name="Forge Buds",
        slug="buds",
        brand=forge,
        category=audio,
        description="Small earbuds that pair with any headphones jack.",
    )
    VariantFactory(product=buds, price=Decimal("79.00"), stock=0)
    phone = ProductFactory(
        name="Nimbus X2 Phone",
        slug="x2",
        brand=nimbus,
        category=phones,
        description="A phone with great speakers.",
    )
    VariantFactory(product=phone, price=Decimal("599.00"), stock=10, options={"storage": "128 GB"})
    VariantFactory(product=phone, price=Decimal("699.00"), stock=0, options={"storage": "256 GB"})
    return {"forge": forge, "audio": audio, "headphones": headphones, "phones": phones}


def test_only_active_products_are_listed_or_shown(client, audio):
    draft = ProductFactory(name="Secret Draft", slug="secret-draft", status=ProductStatus.DRAFT)
    archived = ProductFactory(name="Old Archived", slug="old", status=ProductStatus.ARCHIVED)
    content = client.get("/products/").content.decode()
    assert "Forge Studio Headphones" in content
    assert "Secret Draft" not in content and "Old Archived" not in content
    assert client.get("/products/?q=secret").content.decode().count("Secret Draft") == 0
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert client.get(archived.get_absolute_url()).status_code == 404
    assert client.get("/products/studio/").status_code == 200


def test_name_match_ranks_above_description_match(audio):
    # "headphones" is in the studio's name and in the buds' description only.
    assert _names(product_search(ProductFilters(q="headphones")))[:2] == [
        "Forge Studio Headphones",
        "Forge Buds",
    ]


def test_a_typo_still_finds_the_product(client, audio):
    assert _names(product_search(ProductFilters(q="headphnes")))[0] == "Forge Studio Headphones"
    assert _names(product_search(ProductFilters(q="nimbsu")))[0] == "Nimbus X2 Phone"
    response = client.get("/products/?q=studo+headphnes")
    assert "Forge Studio Headphones" in response.content.decode()


def test_typos_are_forgiven_as_search_engines_do(client, audio):
    case = ProductFactory(name="Headphone Case", slug="case", brand=audio["forge"])
    # A swap of two neighbouring letters is one typo: one is allowed from 5 letters on.
    assert set(_names(product_search(ProductFilters(q="Fogre")))) == {
        "Forge Studio Headphones",
        "Forge Buds",
        case.name,
    }
    # From 9 letters on, two: a swap and a letter too many.
    assert case.name in _names(product_search(ProductFilters(q="haedphones")))
    assert "Forge Studio Headphones" in _names(product_search(ProductFilters(q="haedphonnes")))
    # The corrected word and the exact ones are ANDed, as typed words are.
    assert _names(product_search(ProductFilters(q="fogre case"))) == [case.name]
    html = client.get("/products/?q=Fogre+studio").content.decode()
    assert "Forge Studio Headphones" in html and "Forge Buds" not in html


def test_short_words_get_no_typo_and_long_ones_no_more_than_two(audio):
    ProductFactory(name="Lamp Stand", slug="lamp")
    assert "Lamp Stand" in _names(product_search(ProductFilters(q="lamp")))
    # 4 letters: no typo ("lmap" is not "lamp"); the trigram pass finds nothing either.
    assert _names(product_search(ProductFilters(q="lmap"))) == []
    # 6 letters, two swaps: too many for a word under 9 letters.
    assert "Forge Studio Headphones" not in _names(product_search(ProductFilters(q="stduoi")))
    # 10 letters, three typos.
    assert "Forge Studio Headphones" not in _names(product_search(ProductFilters(q="haedpohnse")))


def test_a_new_product_is_found_by_a_typo_at_once(audio):
    assert _names(product_search(ProductFilters(q="kestrle"))) == []
    ProductFactory(name="Kestrel Trail Backpack", slug="kestrel")
    assert _names(product_search(ProductFilters(q="kestrle"))) == ["Kestrel Trail Backpack"]


def test_typo_distance_counts_a_swap_as_one():
    from catalog.search_words import corrections, deletes, distance, typo_budget

    assert distance("fogre", "forge") == 1
    assert distance("haedphones", "headphones") == 1
    assert distance("haedphones", "headphone") == 2
    assert distance("studo", "studio") == 1
    assert distance("abc", "abc") == 0
    assert [typo_budget(w) for w in ("lamp", "forge", "headphon", "headphone")] == [0, 1, 1, 2]
    assert deletes("ab", 2) == {"ab", "a", "b"}
    assert corrections(["lmap", "x2"]) == [["lmap"], ["x2"]]  # nothing to correct: no query


def test_search_covers_brand_and_category_names(audio):
    assert set(_names(product_search(ProductFilters(q="forge")))) == {
        "Forge Studio Headphones",
        "Forge Buds",
    }
    assert "Nimbus X2 Phone" in _names(product_search(ProductFilters(q="phones")))


def test_no_match_gives_an_empty_page_not_an_error(client, audio):
    response = client.get("/products/?q=zzzzqqqq")
    assert response.status_code == 200
    assert "Forge" not in _names(response.context["products"])
    assert response.context["page_obj"].paginator.count == 0


def test_filters(audio):
    assert _names(product_search(ProductFilters(brand="nimbus-mobile"))) == ["Nimbus X2 Phone"]
    # A category includes its subtree.
    assert set(_names(product_search(ProductFilters(category=audio["audio"])))) == {
        "Forge Studio Headphones",
        "Forge Buds",
    }
    assert _names(product_search(ProductFilters(category=audio["headphones"]))) == [
        "Forge Studio Headphones"
    ]
    assert set(
        _names(product_search(ProductFilters(price_min=Decimal("150"), price_max=Decimal("650"))))
    ) == {"Forge Studio Headphones", "Nimbus X2 Phone"}
    assert set(_names(product_search(ProductFilters(in_stock=True)))) == {
        "Forge Studio Headphones",
        "Nimbus X2 Phone",
    }


def test_sorting_by_price_and_newest(audio):
    assert _names(product_search(ProductFilters(sort="price_asc"))) == [
        "Forge Buds",
        "Forge Studio Headphones",
        "Nimbus X2 Phone",
    ]
    assert _names(product_search(ProductFilters(sort="price_desc"))) == [
        "Nimbus X2 Phone",
        "Forge Studio Headphones",
        "Forge Buds",
    ]
    assert _names(product_search(ProductFilters(sort="newest")))[0] == "Nimbus X2 Phone"


def test_filters_through_the_page(client, audio):
    response = client.get("/products/?brand=forge-audio&in_stock=on&sort=price_asc")
    assert _names(response.context["products"]) == ["Forge Studio Headphones"]


@pytest.mark.parametrize(
    "query",
    [
        "price_min=abc",
        "price_min=50&price_max=10",
        "sort=evil",
        "price_max=-5",
    ],
)
def test_bad_filter_input_is_a_clear_400(client, audio, query):
    response = client.get(f"/products/?{query}")
    assert response.status_code == 400
    assert response.context["form"].errors


def test_pages_are_numbered(client, audio):
    category = CategoryFactory()
    for n in range(30):
        ProductFactory(name=f"Bulk {n:02d}", category=category)
    first = client.get("/products/?sort=newest")
    assert first.context["page_obj"].paginator.num_pages == 2
    second = client.get("/products/?sort=newest&page=2")
    assert len(second.context["products"]) == 33 - 24
    assert client.get("/products/?page=999").status_code == 200  # last page, not a 500


def test_category_page_shows_breadcrumbs_and_subtree(client, audio):
    response = client.get("/categories/audio/headphones/")
    assert response.status_code == 200
    assert [c.name for c in response.context["breadcrumbs"]] == ["Audio", "Headphones"]
    assert _names(response.context["products"]) == ["Forge Studio Headphones"]
    parent = client.get("/categories/audio/")
    assert set(_names(parent.context["products"])) == {"Forge Studio Headphones", "Forge Buds"}
    assert client.get("/categories/nope/").status_code == 404


def _catalogue(count: int) -> None:
    brand, category = BrandFactory(), CategoryFactory()
    user = UserFactory()
    for n in range(count):
        product = ProductFactory(brand=brand, category=category, name=f"Gadget {n}")
        VariantFactory(product=product, options={"colour": "Black"})
        VariantFactory(product=product, options={"colour": "White"})
        ReviewFactory(product=product, user=user)


@pytest.mark.parametrize(
    "url", ["/products/", "/products/?q=gadget&in_stock=on", "/products/?sort=price_asc"]
)
def test_product_list_query_count_does_not_grow(client, url):
    _catalogue(5)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _catalogue(95)
    cache.delete_pattern("*")  # both requests cold: count the listing's total again
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(few) == len(many) <= 10


def test_cached_product_grid_follows_price_stock_and_rating(
    client, audio, django_capture_on_commit_callbacks
):
    from catalog.services import variant_save

    assert "$199.00" in client.get("/products/?sort=newest").content.decode()
    variant = Variant.objects.get(product__slug="studio")
    variant.price = Decimal("149.00")
    with django_capture_on_commit_callbacks(execute=True):  # the listings' version moves
        variant_save(variant=variant, fields=["price"])
    assert "$149.00" in client.get("/products/?sort=newest").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        ReviewFactory(product=variant.product, rating=5)
    html = client.get("/products/?sort=newest").content.decode()
    assert "$149.00" in html and "$199.00" not in html
    assert "(1<span" in html  # the new review count on the card


def _counts(queries) -> int:
    return sum(query["sql"].startswith("SELECT COUNT(*)") for query in queries)


def test_a_listing_total_is_counted_once_a_minute_per_query(
    client, audio, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as cold:
        first = client.get("/products/?sort=newest")
    assert _counts(cold) == 1 and first.context["page_obj"].paginator.count == 3
    with django_capture_on_commit_callbacks(execute=True):  # the cached listings are retired
        ProductFactory(name="Forge Cable")
    with CaptureQueriesContext(connection) as warm:
        again = client.get("/products/?sort=newest")
    assert _counts(warm) == 0
    assert again.context["page_obj"].paginator.count == 3  # the total lags for a minute
    assert "Forge Cable" in again.content.decode()  # the products themselves do not
    filtered = client.get("/products/?q=forge")  # another query has its own total
    assert filtered.context["page_obj"].paginator.count == 3
    cache.delete_pattern("catalog:listing-count:*")  # what the minute's expiry does
    page_cache_forget()  # and the cached page's, which holds the total as long again
    assert client.get("/products/?sort=newest").context["page_obj"].paginator.count == 4


def test_every_page_has_a_search_box_in_the_header(client, audio):
    for url in ("/", "/c/", "/products/studio/"):
        page = client.get(url).content.decode()
        assert '<form class="header-search" role="search" method="get" action="/products/">' in page
        assert 'name="q" value=""' in page
    # The listing keeps what was typed in the box; a swapped pair of letters still finds it.
    page = client.get("/products/?q=fogre+studoi").content.decode()
    assert 'name="q" value="fogre studoi"' in page and "Forge Studio Headphones" in page


def test_search_uses_its_index_right_after_writes(audio):
    """The search GIN indexes keep no pending list (fastupdate off): with one, products just
    written wait in a list the planner prices so high that it scans the whole table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
            [["catalog_product_search", "catalog_product_trgm", "catalog_searchword_deletes"]],
        )
        options = {name: [o.replace("=off", "=false") for o in opts] for name, opts in cursor}
    assert options == {
        "catalog_product_search": ["fastupdate=false"],
        "catalog_product_trgm": ["fastupdate=false"],
        "catalog_searchword_deletes": ["fastupdate=false"],
    }


def test_product_cards_leave_the_long_columns_out(audio):
    with CaptureQueriesContext(connection) as queries:
        names = _names(product_search(ProductFilters(q="headphones")))
    [listing] = [q["sql"] for q in queries.captured_queries if "ts_rank(" in q["sql"]]
    columns = listing.split(' FROM "catalog_product"')[0]
    assert names and '"catalog_product"."name"' in columns
    assert '"description' not in columns
    assert '"catalog_product"."search_vector", "' not in columns  # ts_rank's argument is fine
