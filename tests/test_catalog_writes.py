"""Catalogue writes name the fields they change: a price edit made from a page loaded before
a sale keeps the sale's stock, and a stock edit is the operator's adjustment on top of
sales made meanwhile (catalog.services.variant_save)."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
import tablib
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from catalog.admin_resources import VariantResource
from catalog.models import Variant
from catalog.services import variant_save
from tests.factories import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _sell(variant: Variant, quantity: int = 1) -> None:
    """What checkout does (orders.services): a conditional UPDATE, no read-modify-write."""
    assert Variant.objects.filter(pk=variant.pk, stock__gte=quantity).update(
        stock=F("stock") - quantity
    )


def _row(variant: Variant) -> tuple[Decimal, int]:
    return Variant.objects.values_list("price", "stock").get(pk=variant.pk)


def _variant_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "catalog_variant"')]


# --- the service -----------------------------------------------------------------------------


def test_a_price_edit_keeps_a_sale_made_after_the_variant_was_loaded():
    variant = VariantFactory(price=Decimal("99.00"), stock=10)
    loaded = Variant.objects.get(pk=variant.pk)
    _sell(variant)
    loaded.price = Decimal("89.00")
    with CaptureQueriesContext(connection) as queries:
        variant_save(variant=loaded, fields=["price"])
    assert _row(variant) == (Decimal("89.00"), 9)
    assert all('"stock"' not in sql for sql in _variant_updates(queries))
    loaded.product.refresh_from_db()
    assert loaded.product.price_min == Decimal("89.00")


def test_a_stock_edit_adjusts_the_stock_as_it_is_now():
    variant = VariantFactory(stock=10)
    loaded = Variant.objects.get(pk=variant.pk)
    _sell(variant)
    loaded.stock = 50  # a delivery of 40 counted against the 10 the page showed
    saved = variant_save(variant=loaded, fields=["stock"], stock_seen=10)
    assert _row(variant)[1] == saved.stock == 49

    _sell(variant, 9)  # 40 left; the operator, seeing 49, writes the shelf off
    loaded.stock = 0
    assert variant_save(variant=loaded, fields=["stock"], stock_seen=49).stock == 0  # not -9


def test_a_stock_count_without_what_was_seen_is_set_as_given():
    variant = VariantFactory(stock=10)
    _sell(variant)
    variant.stock = 25
    assert variant_save(variant=variant, fields=["stock"]).stock == 25


def test_an_existing_variant_cannot_be_saved_whole_or_with_unknown_fields():
    variant = VariantFactory()
    with pytest.raises(TypeError):
        variant_save(variant=variant)
    with pytest.raises(ValueError):
        variant_save(variant=variant, fields=["stock_typo"])


# --- the admin: list edits, the product page's inline, CSV import -----------------------------


class _FormValues(HTMLParser):
    """The values a browser would submit from the page's forms."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data[name] = attrs.get("value", "on")
            elif kind not in ("submit", "file", "button"):
                self.data[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += (
                data.lstrip("\n") if not self.data[self._textarea] else data
            )


def _form_values(html: str) -> dict[str, str]:
    parser = _FormValues()
    parser.feed(html)
    return parser.data


def _prefix_of(data: dict[str, str], variant: Variant, id_suffix: str = "-id") -> str:
    return next(
        k.removesuffix(id_suffix)
        for k, v in data.items()
        if k.endswith(id_suffix) and v == str(variant.pk) and not k.startswith("initial-")
    )


def test_a_list_price_edit_from_a_page_loaded_before_a_sale_keeps_the_sale(admin_client):
    variant = VariantFactory(price=Decimal("99.00"), stock=10)
    page = admin_client.get("/admin/catalog/variant/")
    data = _form_values(page.content.decode())
    prefix = _prefix_of(data, variant)
    assert data[f"initial-{prefix}-stock"] == "10"  # the page carries what it showed

    _sell(variant)  # a checkout while the operator types
    data[f"{prefix}-price"] = "89.00"
    response = admin_client.post("/admin/catalog/variant/", {**data, "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert _row(variant) == (Decimal("89.00"), 9)


def test_a_list_stock_edit_is_applied_on_top_of_a_sale(admin_client):
    variant = VariantFactory(stock=10)
    data = _form_values(admin_client.get("/admin/catalog/variant/").content.decode())
    prefix = _prefix_of(data, variant)
    _sell(variant)
    data[f"{prefix}-stock"] = "30"  # +20 received
    assert (
        admin_client.post("/admin/catalog/variant/", {**data, "_save": "Save"}).status_code == 302
    )
    assert _row(variant)[1] == 29


def test_a_price_edit_in_the_product_pages_inline_keeps_the_sale(admin_client):
    product = ProductFactory()
    variant = VariantFactory(product=product, price=Decimal("99.00"), stock=10)
    other = VariantFactory(product=product, options={"colour": "Red"}, stock=5)
    url = f"/admin/catalog/product/{product.pk}/change/"
    data = _form_values(admin_client.get(url).content.decode())
    prefix = _prefix_of(data, variant)
    _sell(variant)
    _sell(other, 2)
    data[f"{prefix}-price"] = "89.00"
    response = admin_client.post(url, {**data, "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert _row(variant) == (Decimal("89.00"), 9)
    assert _row(other)[1] == 3  # unchanged row: not written at all


def test_a_csv_import_writes_only_the_columns_that_change():
    variant = VariantFactory(price=Decimal("99.00"), stock=10)
    dataset = tablib.Dataset(headers=["sku", "product", "price", "stock"])
    dataset.append([variant.sku, variant.product.slug, "79.00", "10"])
    with CaptureQueriesContext(connection) as queries:
        result = VariantResource().import_data(dataset, dry_run=False, raise_errors=True)
    assert not result.has_errors()
    assert _row(variant) == (Decimal("79.00"), 10)
    updates = _variant_updates(queries)
    assert updates and all('"stock"' not in sql for sql in updates)
