import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from catalog.models import Product, ProductImage, Variant
from catalog.services import category_save, product_image_add
from tests.factories import (
    CategoryFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone():
    product = ProductFactory(name="Nimbus X2", slug="x2", description="**Fast** phone")
    VariantFactory(
        product=product,
        sku="X2-BLK-128",
        price=Decimal("599.00"),
        stock=4,
        options={"colour": "Black", "storage": "128 GB"},
    )
    VariantFactory(
        product=product,
        sku="X2-BLK-256",
        price=Decimal("699.00"),
        stock=0,
        options={"colour": "Black", "storage": "256 GB"},
        compare_at_price=Decimal("749.00"),
    )
    VariantFactory(
        product=product,
        sku="X2-WHT-256",
        price=Decimal("699.00"),
        stock=9,
        options={"colour": "White", "storage": "256 GB"},
    )
    product.refresh_from_db()
    return product


def test_summary_follows_the_variants(phone):
    assert (phone.price_min, phone.price_max, phone.in_stock) == (
        Decimal("599.00"),
        Decimal("699.00"),
        True,
    )
    Variant.objects.filter(product=phone).update(stock=0)
    from catalog.services import product_refresh_summary

    product_refresh_summary(product_id=phone.pk)
    phone.refresh_from_db()
    assert phone.in_stock is False


def test_product_page_shows_the_first_available_variant(client, phone):
    response = client.get("/products/x2/")
    assert response.status_code == 200
    assert response.context["variant"].sku == "X2-BLK-128"
    content = response.content.decode()
    assert "599.00" in content
    assert "<strong>Fast</strong>" in content  # Markdown rendered
    assert response.context["options"] == {
        "colour": ["Black", "White"],
        "storage": ["128 GB", "256 GB"],
    }


def test_picking_options_without_javascript(client, phone):
    response = client.get("/products/x2/?colour=White&storage=256+GB")
    assert response.context["variant"].sku == "X2-WHT-256"
    response = client.get("/products/x2/?colour=Black&storage=256+GB")
    variant = response.context["variant"]
    assert variant.sku == "X2-BLK-256" and not variant.is_available
    assert "Out of stock" in response.content.decode()


def test_picking_options_with_htmx_returns_the_panel_only(client, phone):
    response = client.get(
        "/products/x2/variant/?colour=White&storage=256+GB", HTTP_HX_REQUEST="true"
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert "699.00" in content and "X2-WHT-256" in content
    assert "In stock" in content
    # Without htmx the same URL sends the browser to the product page with that variant.
    response = client.get("/products/x2/variant/?colour=White&storage=256+GB")
    assert response.status_code == 302
    white = Variant.objects.get(sku="X2-WHT-256")
    assert response["Location"] == f"/products/x2/?variant={white.pk}"


def test_stock_cannot_go_below_zero_even_by_a_bug(phone):
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(sku="X2-BLK-128").update(stock=-1)


def test_sku_is_unique(phone):
    with pytest.raises(ValidationError):
        VariantFactory(product=phone, sku="X2-BLK-128", options={"colour": "Red"})


def test_compare_at_price_must_be_above_the_price(phone):
    with pytest.raises(ValidationError):
        VariantFactory(
            product=phone,
            price=Decimal("10.00"),
            compare_at_price=Decimal("9.00"),
            options={"colour": "Gold"},
        )


def test_category_moves_rewrite_the_subtree():
    audio = CategoryFactory(name="Audio", slug="audio")
    headphones = CategoryFactory(name="Headphones", slug="headphones", parent=audio)
    wireless = CategoryFactory(name="Wireless", slug="wireless", parent=headphones)
    electronics = CategoryFactory(name="Electronics", slug="electronics")
    audio.parent = electronics
    category_save(category=audio)
    wireless.refresh_from_db()
    assert wireless.path == "electronics/audio/headphones/wireless"
    assert wireless.full_name == "Electronics › Audio › Headphones › Wireless"
    assert wireless.depth == 3
    electronics.parent = wireless
    with pytest.raises(ValidationError):
        category_save(category=electronics)


def _png(size=(800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, format="PNG")
    return out.getvalue()


def test_valid_image_is_reencoded_and_thumbnailed(phone, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        image = product_image_add(
            product=phone, upload=SimpleUploadedFile("a.png", _png(), "image/png")
        )
    image.refresh_from_db()
    assert image.image.name.endswith(".jpg")
    assert (image.width, image.height) == (800, 600)
    with image.thumbnail_small.open("rb") as small, Image.open(small) as thumb:
        assert max(thumb.size) == ProductImage.THUMBNAIL_SIZES["small"]
    assert image.small_url != image.image.url


def test_page_shows_the_original_until_the_thumbnail_exists(phone):
    image = product_image_add(
        product=phone, upload=SimpleUploadedFile("a.png", _png(), "image/png")
    )
    # The thumbnail task waits for the commit that a test never makes.
    assert image.small_url == image.image.url
    assert image.large_url == image.image.url


@pytest.mark.parametrize(
    "content",
    [
        b"just some text pretending to be a picture",
        None,  # a 20,000 x 20,000 PNG (made below)
    ],
)
def test_bad_images_are_refused(phone, content):
    if content is None:
        out = io.BytesIO()
        Image.new("1", (20_000, 20_000)).save(out, format="PNG")
        content = out.getvalue()
    with pytest.raises(ValidationError):
        product_image_add(product=phone, upload=SimpleUploadedFile("x.png", content, "image/png"))
    assert not ProductImage.objects.exists()


def test_product_page_query_count_does_not_grow(client):
    def build(variants: int, reviews: int) -> Product:
        product = ProductFactory()
        for n in range(variants):
            VariantFactory(product=product, options={"size": str(n)})
        for _ in range(reviews):
            ReviewFactory(product=product, user=UserFactory())
        for _ in range(min(variants, 4)):
            product_image_add(
                product=product, upload=SimpleUploadedFile("a.png", _png((50, 50)), "image/png")
            )
        return product

    small, large = build(2, 2), build(30, 40)
    viewer = UserFactory()
    client.force_login(viewer)
    client.get("/")  # the header's cart count is counted once, then kept
    counts = []
    for product in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(product.get_absolute_url()).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 10  # the product's state (the page's key), then the page
    with CaptureQueriesContext(connection) as warm:
        client.get(large.get_absolute_url())
    assert len(warm) == 0  # the fan's marks, the page and the user are cached
