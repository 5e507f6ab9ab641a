"""The option picker in a real browser: no "Update" button once htmx runs, the picture
follows the chosen colour, and a thumbnail opens a larger view on the page."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from playwright.sync_api import expect

from catalog.models import ProductImage
from catalog.services import product_image_add
from tests.factories import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _png(colour: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, "PNG")
    return SimpleUploadedFile(f"{colour}.png", buffer.getvalue(), "image/png")


def test_the_picture_follows_the_chosen_colour_and_opens_on_the_page(live_server, desktop_page):
    product = ProductFactory(name="Nimbus Buds", slug="buds")
    VariantFactory(product=product, options={"colour": "Black"})
    VariantFactory(product=product, options={"colour": "Red"}, stock=0)
    general = product_image_add(product=product, upload=_png("white"))
    red = product_image_add(product=product, upload=_png("red"))
    ProductImage.objects.filter(pk=red.pk).update(option_name="colour", option_value="Red")
    page = desktop_page
    page.goto(f"{live_server.url}/products/buds/")
    main = page.locator(".product-gallery-main")
    expect(main).to_have_attribute("href", f"#image-{general.pk}")
    expect(page.locator(".option-picker-submit")).to_be_hidden()  # htmx is on
    page.locator(".option-pill", has_text="Red").click()
    expect(main).to_have_attribute("href", f"#image-{red.pk}")
    expect(page.locator("#variant-panel")).to_contain_text("Out of stock")
    # A thumbnail opens the larger view over the page, not the raw file.
    page.locator(".product-thumbs a").first.click()
    expect(page).to_have_url(re.compile(rf"/products/buds/.*#image-{general.pk}$"))
    expect(page.locator(f"#image-{general.pk}")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(f"#image-{general.pk}")).to_be_hidden()
