"""A product page leads to its brand's fan club and its open batch, and back; pictures
follow the chosen option and open on the page; the small shop fixes of issue 19."""

import io

import pytest
from django.core.cache import cache
from django.core.cache.utils import make_template_fragment_key
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from catalog.models import ProductImage
from catalog.services import product_image_add
from communities.models import Community, CommunityKind, Invite, Membership, Role, Visibility
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _club(brand, **kwargs) -> Community:
    defaults = {"name": "Nimbus Fans", "slug": "nimbus-fans", "kind": CommunityKind.BRAND}
    club = Community.objects.create(brand=brand, **{**defaults, **kwargs})
    Community.objects.filter(pk=club.pk).update(member_count=1234)
    return club


def test_product_page_loads_the_fan_club_and_the_open_batch(client):
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    product = ProductFactory(brand=brand, name="Nimbus X3", slug="x3")
    club = _club(brand)
    _club(brand, name="Nimbus Hobbyists", slug="nimbus-hobby", kind=CommunityKind.HOBBY)
    batch = batch_open(product=product)
    other_batch = batch_open(product=ProductFactory(brand=brand, name="Nimbus Pad"))
    page = client.get(product.get_absolute_url()).content.decode()
    links = reverse("storefront:product_links", args=["x3"])
    assert f'hx-get="{links}"' in page
    assert brand.get_absolute_url() in page  # without htmx, the brand page has both
    fragment = client.get(links, **HTMX).content.decode()
    assert club.get_absolute_url() in fragment and "1234 members" in fragment
    assert batch.get_absolute_url() in fragment
    assert other_batch.get_absolute_url() not in fragment  # only this product's batch
    assert "/c/nimbus-hobby/" not in fragment  # the fan club, not any circle
    assert client.get(links)["Location"] == product.get_absolute_url()


def test_no_club_and_no_batch_shows_nothing(client):
    ProductFactory(slug="plain")
    fragment = client.get(reverse("storefront:product_links", args=["plain"]), **HTMX)
    assert fragment.status_code == 200 and fragment.content.decode().strip() == ""


def test_the_brand_page_shows_its_fan_club(client):
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    club = _club(brand)
    html = client.get(brand.get_absolute_url()).content.decode()
    assert club.get_absolute_url() in html and "1234 members" in html


def test_the_batch_page_links_back_to_the_product_and_the_club(client):
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    product = ProductFactory(brand=brand, name="Nimbus X3", slug="x3")
    club = _club(brand)
    batch = batch_open(product=product)
    html = client.get(batch.get_absolute_url()).content.decode()
    assert product.get_absolute_url() in html and club.get_absolute_url() in html


def test_the_picture_follows_the_chosen_colour(client):
    product = ProductFactory(slug="buds")
    VariantFactory(product=product, options={"colour": "Black"})
    red = VariantFactory(product=product, options={"colour": "Red"})
    general = product_image_add(
        product=product, upload=SimpleUploadedFile("a.png", _png("white"), "image/png")
    )
    red_image = product_image_add(
        product=product, upload=SimpleUploadedFile("r.png", _png("red"), "image/png")
    )
    ProductImage.objects.filter(pk=red_image.pk).update(option_name="colour", option_value="Red")
    main = 'class="product-gallery-main" href="#image-{}"'
    html = client.get(product.get_absolute_url()).content.decode()
    assert main.format(general.pk) in html  # Black: the general picture leads
    html = client.get(f"{product.get_absolute_url()}?variant={red.pk}").content.decode()
    assert main.format(red_image.pk) in html
    # The htmx picker swaps the gallery out of band with the panel.
    fragment = client.get(
        reverse("storefront:product_variant", args=["buds"]), {"colour": "Red"}, **HTMX
    ).content.decode()
    assert 'id="product-gallery" hx-swap-oob="true"' in fragment
    assert main.format(red_image.pk) in fragment
    # No JavaScript: the picker's form leads to the product page showing that variant.
    response = client.get(reverse("storefront:product_variant", args=["buds"]), {"colour": "Red"})
    assert response["Location"] == f"{product.get_absolute_url()}?variant={red.pk}"


def test_a_thumbnail_opens_a_larger_view_on_the_page_not_the_raw_file(client):
    product = ProductFactory(slug="buds")
    VariantFactory(product=product)
    images = [
        product_image_add(
            product=product, upload=SimpleUploadedFile(f"{c}.png", _png(c), "image/png")
        )
        for c in ("white", "blue")
    ]
    html = client.get(product.get_absolute_url()).content.decode()
    for image in images:
        assert f'href="#image-{image.pk}"' in html and f'id="image-{image.pk}"' in html
        assert f'href="{image.image.url}"' not in html


def test_the_update_button_is_for_no_js_and_the_page_loads_the_shop_script(client):
    product = ProductFactory(slug="buds")
    VariantFactory(product=product, options={"colour": "Black"})
    VariantFactory(product=product, options={"colour": "Red"})
    html = client.get(product.get_absolute_url()).content.decode()
    assert 'option-picker-submit" data-no-js>Update' in html
    assert "/static/js/shop.js" in html


def test_cancelling_a_reservation_asks_first(client):
    batch = batch_open()
    reservation = reserve(batch=batch)
    client.force_login(reservation.user)
    html = client.get(reservation.get_absolute_url()).content.decode()
    cancel = reverse("preorders:reservation_cancel", args=[reservation.pk])
    before, form = html.split(f'action="{cancel}"', 1)
    assert '<details class="confirm-step">' in before.rsplit("<form", 1)[0][-600:]
    assert "Yes, cancel it" in form.split("</form>", 1)[0]


def test_an_invite_link_stays_on_its_page_with_a_copy_button(client):
    community = Community.objects.create(
        name="Inner", slug="inner", kind="hobby", visibility=Visibility.INVITE_ONLY
    )
    owner = UserFactory()
    Membership.objects.create(community=community, user=owner, role=Role.OWNER)
    client.force_login(owner)
    response = client.post(reverse("communities:invite_new", args=["inner"]))
    invite = Invite.objects.get()
    assert response["Location"] == reverse("communities:invite", args=[invite.token])
    html = client.get(response["Location"]).content.decode()
    assert f"/c/invite/{invite.token}/" in html and 'data-copy="#invite-link"' in html
    # Someone invited sees the invitation, not the share box.
    client.force_login(UserFactory())
    html = client.get(response["Location"]).content.decode()
    assert "data-copy" not in html and "Join Inner" in html


def test_featured_communities_show_cover_members_and_description_at_zero_warm_queries(client):
    club = _club(BrandFactory(), description="Phones made with their fans, for their fans.")
    cache.delete(make_template_fragment_key("home_showcase"))
    html = client.get("/").content.decode()
    assert club.get_absolute_url() in html and "1234 members" in html
    assert "Phones made with their fans" in html and "community-tile-cover" in html
    with CaptureQueriesContext(connection) as warm:
        client.get("/")
    assert len(warm) == 0
