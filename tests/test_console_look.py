"""The admin's look for operators: the variant option builder instead of raw JSON, image
previews, their one brand chosen already, the time zone named on every page."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog.forms import VariantAdminForm
from catalog.models import BrandRole, Variant
from catalog.services import product_image_add
from tests.console import operator_of
from tests.factories import BrandFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


def _form(data, instance=None):
    base = {"sku": "S-1", "price": "10.00", "stock": "1", "position": "0", "weight_grams": "0"}
    return VariantAdminForm({**base, **data}, instance=instance)


def test_the_option_builder_posts_rows_of_name_and_value():
    product = ProductFactory()
    form = _form(
        {
            "product": product.pk,
            "options_name_0": "colour",
            "options_value_0": " Black ",
            "options_name_1": "size",
            "options_value_1": "M",
            "options_name_2": "",
            "options_value_2": "",
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["options"] == {"colour": "Black", "size": "M"}


@pytest.mark.parametrize(
    "rows",
    [
        {
            "options_name_0": "colour",
            "options_value_0": "Black",
            "options_name_1": "colour",
            "options_value_1": "Red",
        },
        {"options_name_0": "colour", "options_value_0": ""},
        {"options_name_0": "", "options_value_0": "Black"},
    ],
)
def test_a_name_twice_or_half_a_row_is_a_form_error(rows):
    form = _form({"product": ProductFactory().pk, **rows})
    assert not form.is_valid()
    assert "each name once" in str(form.errors["options"])


def test_json_posts_still_work_and_the_builder_shows_the_saved_options():
    product = ProductFactory()
    form = _form({"product": product.pk, "options": '{"colour": "White"}'})
    assert form.is_valid() and form.cleaned_data["options"] == {"colour": "White"}
    variant = VariantFactory(product=product, options={"colour": "Lime", "size": "L"})
    html = str(VariantAdminForm(instance=variant)["options"])
    assert 'name="options_name_0" value="colour"' in html
    assert 'name="options_value_1" value="L"' in html
    assert 'name="options_name_2" value=""' in html  # room for another option


def test_an_operator_edits_options_in_the_admin_with_the_builder(client):
    brand = BrandFactory(name="Mine", slug="mine")
    owner = operator_of(brand, role=BrandRole.OWNER)
    variant = VariantFactory(product=ProductFactory(brand=brand), options={"colour": "Lime"})
    client.force_login(owner)
    page = client.get(f"/admin/catalog/variant/{variant.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name != "options"}
    data = {
        k: ("on" if v is True else v) for k, v in data.items() if v is not None and v is not False
    }
    initial = {f"initial-{name}": form[name].value() for name in form.fields}
    initial["initial-options"] = '{"colour": "Lime"}'
    data.update({k: v for k, v in initial.items() if v is not None and v is not False})
    data.update({"options_name_0": "colour", "options_value_0": "Mint"})
    response = client.post(f"/admin/catalog/variant/{variant.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Variant.objects.get(pk=variant.pk).options == {"colour": "Mint"}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "navy").save(out, format="PNG")
    return out.getvalue()


def test_product_page_previews_images_preselects_the_brand_and_names_the_zone(client):
    brand = BrandFactory(name="Mine", slug="mine")
    BrandFactory(name="Theirs", slug="theirs")
    owner = operator_of(brand, role=BrandRole.OWNER)
    product = ProductFactory(brand=brand)
    product_image_add(product=product, upload=SimpleUploadedFile("a.png", _png(), "image/png"))
    client.force_login(owner)
    page = client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()
    assert re.search(r'<img src="[^"]+" alt="[^"]*" class="admin-thumb"', page)
    assert "/static/console/admin.css" in page
    assert 'class="admin-zone"' in page and ">UTC<" in page
    add = client.get("/admin/catalog/product/add/").content.decode()
    select = re.search(r'<select name="brand".*?</select>', add, re.S).group(0)
    assert f'<option value="{brand.pk}" selected>' in select
