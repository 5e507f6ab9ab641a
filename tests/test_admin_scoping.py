"""Brand scoping of the whole admin, walked over every registered ModelAdmin: an admin
added later without catalog.admin_scoping fails here."""

import importlib
import io
import re

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from PIL import Image

from catalog.admin_scoping import BrandScopedAdmin, BrandScopedInline, brand_owned
from catalog.models import (
    Brand,
    ExportJob,
    Product,
    ProductImage,
    ProductSpecification,
    StockAlert,
    Variant,
)
from catalog.services import product_image_add
from catalog.team import brand_invitation_create
from communities.ideas import idea_create
from communities.models import Community, Membership, Report
from communities.moderation import report_create
from communities.services import post_create
from crowdfunding.models import RewardTicket, StretchGoal
from crowdfunding.services import comment_create, comment_report, update_publish
from marketing.models import Placement, Voucher, VoucherCode
from orders.models import Cart, Order, OrderEvent, OrderLine, OrderPart
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from preorders.models import Reservation, VariantCap
from preorders.services import waitlist_join
from reviews.models import ReviewReport
from reviews.services import review_report
from tests.crowdfunding import campaign_live, pledge
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)
from tests.preorders import batch_open, reserve
from tests.shop import ADDRESS, CARD_OK
from uploads.forms import VerifiedImagesModelForm

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, format="PNG")
    return out.getvalue()


def _operator(brand: Brand):
    """A staff user of `brand` holding every permission there is: scoping, not missing
    permissions, must be what stops them."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.all())
    brand.operators.add(user, through_defaults={"role": "owner"})
    return UserFactory._meta.model.objects.get(pk=user.pk)  # fresh permission cache


def _world(name: str) -> Brand:
    brand = BrandFactory(name=name, slug=name.lower())
    product = ProductFactory(brand=brand, name=f"{name} phone")
    variant = VariantFactory(product=product)
    StockAlert.objects.create(user=UserFactory(), variant=variant)
    ProductSpecification.objects.create(product=product, name="Weight", value="180 g")
    product_image_add(product=product, upload=SimpleUploadedFile("a.png", _png(), "image/png"))
    review = ReviewFactory(product=product)
    review_report(review=review, reporter=UserFactory(), reason="spam")
    community = Community.objects.create(
        name=f"{name} fans", slug=f"{name.lower()}-fans", kind="brand", brand=brand
    )
    Membership.objects.create(community=community, user=UserFactory(), role="owner")
    post_create(
        community=community,
        author=community.memberships.get().user,
        title="Hello",
        body="First post",
    )
    reporter = UserFactory()
    Membership.objects.create(community=community, user=reporter)
    report_create(reporter=reporter, reason="spam", post=community.posts.get())
    idea_create(community=community, author=reporter, title="Smaller phone", description="x")
    buyer = UserFactory()
    cart = Cart.objects.create(user=buyer)
    cart_add(cart=cart, variant=product.variants.get(), quantity=1)
    order_place(
        user=buyer,
        cart=cart,
        shipping_method="standard",
        address={
            "full_name": "A Fan",
            "line1": "1 Road",
            "line2": "",
            "city": "Town",
            "postal_code": "1",
            "country": "US",
            "phone": "",
        },
    )
    # A voucher with a code, and a placement claiming it.
    voucher = Voucher.objects.create(brand=brand, name=f"{name} 10%", value=10)
    VoucherCode.objects.create(voucher=voucher, code=f"{name.upper()}10")
    Placement.objects.create(brand=brand, name=f"{name} poster", kind="poster", voucher=voucher)
    # A full pre-order batch: a tier, a cap per option, a reservation, a waitlist entry, events.
    batch = batch_open(product=product, cap=1, per_customer_limit=1)
    VariantCap.objects.create(batch=batch, variant=product.variants.get(), cap=1)
    reserve(batch=batch)
    waitlist_join(batch=batch, user=UserFactory(), variant=product.variants.get(), quantity=1)
    # The team: an owner who invites a colleague (an invitation and an audit entry).
    owner = UserFactory(is_staff=True)
    brand.operators.add(owner, through_defaults={"role": "owner"})
    brand_invitation_create(brand=brand, email=f"new@{brand.slug}.test", role="staff", actor=owner)
    # A campaign: a tier, a stretch goal, a pledge with its ticket, an update, a reported comment.
    campaign = campaign_live(brand=brand, tiers=[("Meet-up", "10.00", 5, "experience")])
    StretchGoal.objects.create(campaign=campaign, amount=2000, title="More")
    backer = pledge(campaign=campaign, tier=campaign.tiers.get())
    RewardTicket.objects.create(pledge=backer, code=f"T{name.upper()}")
    update_publish(campaign=campaign, author=reporter, title="News", body="Hi", audience="backers")
    comment = comment_create(campaign=campaign, author=backer.user, body="Yes!")
    comment_report(comment=comment, reporter=reporter, reason="spam")
    return brand


def _shared_order(mine: Brand, theirs: Brand):
    """One paid order holding a line of each brand: a part each."""
    buyer = UserFactory()
    cart = Cart.objects.create(user=buyer)
    for brand in (mine, theirs):
        cart_add(cart=cart, variant=Variant.objects.filter(product__brand=brand).first())
    order = order_place(user=buyer, cart=cart, shipping_method="express", address=ADDRESS)
    order_pay(order=order, saved_card=card_save(user=buyer, card=CARD_OK), user=buyer)
    return order


@pytest.fixture
def two_worlds():
    mine, theirs = _world("Mine"), _world("Theirs")
    _shared_order(mine, theirs)
    operator = _operator(mine)
    # An export job of each brand's operator (each sees only their own).
    ExportJob.objects.create(user=operator, brand=mine, kind="k", file_name="mine.csv")
    ExportJob.objects.create(user=UserFactory(), brand=theirs, kind="k", file_name="theirs.csv")
    return mine, theirs, operator


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _belongs_to(model, pks, brand) -> bool:
    lookup = model.brand_lookup
    field = f"{lookup}__pk" if lookup else "pk"
    return not model._default_manager.filter(pk__in=pks).exclude(**{field: brand.pk}).exists()


def test_every_admin_is_brand_scoped_or_superuser_only(two_worlds):
    mine, theirs, operator = two_worlds
    request = _request(operator)
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.label} ({type(model_admin).__name__})"
        if not brand_owned(model):
            assert not model_admin.has_module_permission(request), label
            assert not model_admin.has_view_permission(request), label
            continue
        assert isinstance(model_admin, BrandScopedAdmin), label
        pks = list(model_admin.get_queryset(request).values_list("pk", flat=True))
        assert pks, f"{label}: the operator sees none of their own rows"
        assert _belongs_to(model, pks, mine), f"{label}: shows another brand's rows"
        for inline in model_admin.get_inline_instances(request):
            if brand_owned(inline.model):
                assert isinstance(inline, BrandScopedInline), f"{label}: {type(inline).__name__}"
        # Every choice in every foreign-key or many-to-many field is the operator's own.
        form = model_admin.get_form(request)
        for name, field in form.base_fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is not None and brand_owned(queryset.model):
                choice_pks = list(queryset.values_list("pk", flat=True))
                assert _belongs_to(queryset.model, choice_pks, mine), f"{label}.{name}"


def test_every_admin_hides_another_brands_objects_on_change_delete_and_history(client, two_worlds):
    """For every registered ModelAdmin of a brand-owned model: the other brand's row is no
    page for the operator (the admin's "doesn't exist" redirect, a 403 or a 404), and a
    POST to its delete view deletes nothing."""
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    walked = 0
    for model, model_admin in admin.site._registry.items():
        if not brand_owned(model):
            continue
        lookup = model.brand_lookup
        rows = model._default_manager.filter(**{lookup or "pk": theirs if lookup else theirs.pk})
        if model is Order:  # the shared order is partly theirs: take one that is theirs only
            rows = rows.exclude(parts__brand=mine)
        row = rows.first()
        assert row is not None, f"{model._meta.label}: the world has no row of theirs"
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{row.pk}"
        for view in ("change", "delete", "history"):
            response = client.get(f"{base}/{view}/")
            assert response.status_code in {302, 403, 404}, (model._meta.label, view)
            if response.status_code == 302:
                assert response["Location"] == "/admin/", (model._meta.label, view)
        client.post(f"{base}/delete/", {"post": "yes"})
        assert model._default_manager.filter(pk=row.pk).exists(), model._meta.label
        walked += 1
    assert walked >= 20


@pytest.mark.parametrize(
    "url",
    [
        "/admin/catalog/product/{product}/change/",
        "/admin/catalog/product/{product}/history/",
        "/admin/catalog/product/{product}/delete/",
        "/admin/catalog/variant/{variant}/change/",
        "/admin/reviews/review/{review}/change/",
        "/admin/catalog/brand/{brand}/change/",
    ],
)
def test_another_brands_objects_do_not_exist_for_an_operator(client, two_worlds, url):
    mine, theirs, operator = two_worlds
    product = Product.objects.get(brand=theirs)
    ids = {
        "product": product.pk,
        "variant": product.variants.get().pk,
        "review": product.reviews.get().pk,
        "brand": theirs.pk,
    }
    client.force_login(operator)
    response = client.get(url.format(**ids))
    assert response.status_code == 302  # "doesn't exist. Perhaps it was deleted?"
    assert response["Location"] == "/admin/"


def test_search_autocomplete_and_actions_stay_in_scope(client, two_worlds):
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    changelist = client.get("/admin/catalog/product/?q=phone").content.decode()
    assert "Mine phone" in changelist and "Theirs phone" not in changelist
    response = client.get(
        "/admin/autocomplete/",
        {"term": "phone", "app_label": "catalog", "model_name": "variant", "field_name": "product"},
    )
    names = [item["text"] for item in response.json()["results"]]
    assert names == ["Mine phone"]
    theirs_product = Product.objects.get(brand=theirs)
    client.post(
        "/admin/catalog/product/",
        {"action": "make_archived", "_selected_action": [theirs_product.pk]},
    )
    theirs_product.refresh_from_db()
    assert theirs_product.status == "active"


def test_csv_export_holds_only_the_operators_products(
    client, two_worlds, django_capture_on_commit_callbacks
):
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    every = Product.objects.values_list("pk", flat=True)  # their ids posted too
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/catalog/product/",
            {"action": "export_csv", "_selected_action": list(every)},
        )
    assert response["Location"] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get(kind="catalog.products")
    assert (job.user, job.brand, job.status) == (operator, mine, "done")
    body = client.get(reverse("admin:catalog_exportjob_download", args=[job.pk])).content
    assert "Mine phone" in body.decode() and "Theirs phone" not in body.decode()


def _import(client, csv_text: str, django_capture_on_commit_callbacks):
    """Upload, and the worker's check (a dry run): the job's page, as the operator sees it."""
    upload = SimpleUploadedFile("products.csv", csv_text.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/catalog/product/import/",
            {"format": "0", "resource": "0", "import_file": upload},
        )
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"]


def test_csv_import_refuses_another_brands_rows(
    client, two_worlds, django_capture_on_commit_callbacks
):
    mine, theirs, operator = two_worlds
    category = CategoryFactory(name="Phones", slug="phones")
    theirs_product = Product.objects.get(brand=theirs)
    client.force_login(operator)
    job_page = _import(
        client,
        "slug,name,brand,category,status,description\n"
        f"hijack,Hijacked,{theirs.slug},{category.path},active,x\n"
        f"{theirs_product.slug},Renamed,{mine.slug},{category.path},archived,x\n",
        django_capture_on_commit_callbacks,
    )
    page = client.get(job_page).content.decode()
    # Another brand's slug reads exactly as one that does not exist; their product's slug
    # reads as a new product of mine, whose slug is taken.
    assert f"No brand &#x27;{theirs.slug}&#x27; found." in page
    assert "Product with this Slug already exists." in page
    assert "Confirm import" not in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(job_page, {"confirm": "1"})
    assert not Product.objects.filter(slug="hijack").exists()
    theirs_product.refresh_from_db()
    assert (theirs_product.name, theirs_product.status) == ("Theirs phone", "active")
    assert theirs_product.brand == theirs


def test_csv_import_creates_the_operators_products(
    client, two_worlds, django_capture_on_commit_callbacks
):
    mine, theirs, operator = two_worlds
    category = CategoryFactory(name="Phones", slug="phones")
    client.force_login(operator)
    job_page = _import(
        client,
        "slug,name,brand,category,status,description\n"
        f"x9,Mine X9,{mine.slug},{category.path},active,**New**\n",
        django_capture_on_commit_callbacks,
    )
    assert "1 row to be created" in client.get(job_page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(job_page, {"confirm": "1"})
    product = Product.objects.get(slug="x9")
    assert product.brand == mine
    assert product.description_html == "<p><strong>New</strong></p>"
    assert product.search_vector is not None
    assert "1 row created" in client.get(job_page).content.decode()


def test_operator_creates_a_product_with_variants_and_images(
    client, two_worlds, django_capture_on_commit_callbacks
):
    mine, theirs, operator = two_worlds
    category = CategoryFactory(name="Phones", slug="phones")
    client.force_login(operator)
    form = client.get("/admin/catalog/product/add/").content.decode()
    brand_select = re.search(r'<select name="brand".*?</select>', form, re.S).group(0)
    assert f'<option value="{mine.pk}"' in brand_select
    assert f'<option value="{theirs.pk}"' not in brand_select

    def inline(prefix, rows):
        data = {
            f"{prefix}-TOTAL_FORMS": str(len(rows)),
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
        for n, row in enumerate(rows):
            data.update({f"{prefix}-{n}-{key}": value for key, value in row.items()})
        return data

    data = {
        "brand": mine.pk,
        "name": "Mine Z1",
        "slug": "mine-z1",
        "category": category.pk,
        "status": "active",
        "description": "The *new* one.",
        **inline(
            "variants",
            [
                {
                    "sku": "Z1-BLK",
                    "options": '{"colour": "Black"}',
                    "price": "399.00",
                    "stock": "5",
                    "track_inventory": "on",
                    "weight_grams": "180",
                    "is_active": "on",
                    "position": "0",
                },
                {
                    "sku": "Z1-WHT",
                    "options": '{"colour": "White"}',
                    "price": "429.00",
                    "stock": "0",
                    "track_inventory": "on",
                    "weight_grams": "180",
                    "is_active": "on",
                    "position": "1",
                },
            ],
        ),
        **inline(
            "images",
            [
                {
                    "image": SimpleUploadedFile("z1.png", _png(), "image/png"),
                    "alt_text": "Front",
                    "position": "0",
                }
            ],
        ),
        **inline("specifications", [{"name": "Screen", "value": "6.1 in", "position": "0"}]),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/catalog/product/add/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    product = Product.objects.get(slug="mine-z1")
    assert (product.price_min, product.price_max, product.in_stock) == (399, 429, True)
    image = ProductImage.objects.get(product=product)
    assert image.thumbnail_small and image.image.name.endswith(".jpg")
    page = client.get("/products/mine-z1/").content.decode()
    assert "Mine Z1" in page and "399.00" in page and "6.1 in" in page

    # Choosing another brand is refused by the form, not silently accepted.
    data.update(
        {"brand": theirs.pk, "slug": "theirs-z1", "variants-0-sku": "T1", "variants-1-sku": "T2"}
    )
    data["images-0-image"] = SimpleUploadedFile("z1.png", _png(), "image/png")
    response = client.post("/admin/catalog/product/add/", data)
    assert response.status_code == 200
    assert not Product.objects.filter(slug="theirs-z1").exists()


def test_product_image_upload_refuses_non_images_in_the_admin(client, two_worlds):
    mine, theirs, operator = two_worlds
    product = Product.objects.get(brand=mine)
    client.force_login(operator)
    page = client.get(f"/admin/catalog/product/{product.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: form[name].value() or ""
        for name in form.fields
        if name not in {"price_min", "price_max", "in_stock", "rating_average", "rating_count"}
    }
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update(
            {
                management.add_prefix(k): v.value()
                for k, v in ((name, management[name]) for name in management.fields)
            }
        )
        for inline_form in formset.formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                if value is not None and value is not False:
                    data[inline_form.add_prefix(name)] = value if not hasattr(value, "url") else ""
    prefix = "images"
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
    data[f"{prefix}-{total}-image"] = SimpleUploadedFile("fake.png", b"not an image", "image/png")
    data[f"{prefix}-{total}-position"] = "5"
    data.pop(f"{prefix}-0-image", None)
    response = client.post(f"/admin/catalog/product/{product.pk}/change/", data)
    assert response.status_code == 200
    assert "valid image" in response.content.decode()
    assert ProductImage.objects.filter(product=product).count() == 1


def test_review_moderation_actions(client, two_worlds):
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    review = Product.objects.get(brand=mine).reviews.get()
    client.post("/admin/reviews/review/", {"action": "hide", "_selected_action": [review.pk]})
    review.refresh_from_db()
    assert review.is_hidden
    assert ReviewReport.objects.get(review=review).resolved_at is not None
    assert Variant.objects.exists()


def test_an_operator_sees_only_their_part_of_a_shared_order(client, two_worlds):
    mine, theirs, operator = two_worlds
    shared = Order.objects.filter(parts__brand=mine).filter(parts__brand=theirs).get()
    request = _request(operator)
    model_admin = admin.site._registry[Order]
    assert shared in model_admin.get_queryset(request)
    for inline in model_admin.get_inline_instances(request, shared):
        rows = inline.get_queryset(request).filter(order=shared)
        if inline.model in (OrderPart, OrderLine):
            assert {row.brand for row in rows} == {mine}, type(inline).__name__
        if inline.model is OrderEvent:
            assert not rows.filter(part__brand=theirs).exists()
    client.force_login(operator)
    page = client.get(f"/admin/orders/order/{shared.pk}/change/").content.decode()
    assert "Mine phone" in page and "Theirs phone" not in page
    theirs_part = shared.parts.get(brand=theirs)
    for operation in ["ship", "deliver", "refund", "cancel"]:
        url = f"/admin/orders/order/{shared.pk}/operate/{operation}/?part={theirs_part.pk}"
        assert client.get(url).status_code == 404, operation
    assert (
        client.post(
            f"/admin/orders/order/{shared.pk}/operate/ship/",
            {"part": theirs_part.pk, "tracking_number": "X"},
        ).status_code
        == 404
    )
    theirs_part.refresh_from_db()
    assert theirs_part.status == "paid" and theirs_part.tracking_number == ""


# --- existence oracles, links operators cannot open, permissions of the demo group ----------


def _shortcut(client, obj, pk=None):
    ct = ContentType.objects.get_for_model(type(obj))
    return client.get(f"/admin/r/{ct.pk}/{obj.pk if pk is None else pk}/")


def test_view_on_site_shortcut_answers_as_for_a_missing_object(client, two_worlds):
    mine, theirs, operator = two_worlds
    theirs_product = Product.objects.get(brand=theirs)
    Product.objects.filter(pk=theirs_product.pk).update(status="draft", slug="secret-draft")
    theirs_order = Order.objects.filter(parts__brand=theirs).exclude(parts__brand=mine).first()
    mine_product = Product.objects.get(brand=mine)
    client.force_login(operator)
    assert _shortcut(client, mine_product).status_code == 302  # their own: the redirect works
    for obj in (theirs_product, theirs_order, theirs):
        missing = _shortcut(client, obj, pk=10_000_000)
        response = _shortcut(client, obj)
        assert response.status_code == missing.status_code == 404, type(obj).__name__
        body = _page(response)
        assert body == _page(missing)
        assert "secret-draft" not in body and theirs_order.number not in body
    # A model the operator may not view at all (users) is as missing as an unknown id.
    assert _shortcut(client, operator).status_code == 404
    assert _shortcut(client, mine_product, pk="not-a-number").status_code == 404
    # A superuser keeps the shortcut everywhere.
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = _shortcut(client, theirs_product)
    assert response.status_code == 302 and "secret-draft" in response["Location"]


def _page(response) -> str:
    """The page without its per-request tokens (CSRF input and meta tag)."""
    return re.sub(r'(value|content)="[A-Za-z0-9]{64}"', "", response.content.decode())


def _admin_links(html: str) -> set[str]:
    return {
        link
        for link in re.findall(r'href="(/admin/[^"#?]*)', html)
        if not link.startswith(("/admin/logout", "/admin/jsi18n"))
    }


def test_order_and_reservation_pages_link_only_to_what_an_operator_can_open(client, two_worlds):
    mine, theirs, operator = two_worlds
    order = Order.objects.filter(parts__brand=mine).exclude(parts__brand=theirs).first()
    reservation = Reservation.objects.get(batch__product__brand=mine)
    client.force_login(operator)
    for url, customer in [
        (f"/admin/orders/order/{order.pk}/change/", order.user),
        (f"/admin/preorders/reservation/{reservation.pk}/change/", reservation.user),
    ]:
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert str(customer) in html  # shown, as text
        assert f"/admin/accounts/user/{customer.pk}/" not in html
        assert "/admin/payments/savedcard/" not in html
        for link in _admin_links(html):
            assert client.get(link).status_code != 403, f"{url} links to {link}"
    # A superuser still gets the links.
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    html = client.get(f"/admin/preorders/reservation/{reservation.pk}/change/").content.decode()
    assert f"/admin/accounts/user/{reservation.user.pk}/" in html
    assert f"/admin/payments/savedcard/{reservation.saved_card_id}/" in html


def _demo_operator(brand: Brand):
    """A staff user with exactly the demo "Brand operators" group's permissions."""
    from storefront.demo import _operators_group

    user = UserFactory(is_staff=True)
    user.groups.add(_operators_group())
    brand.operators.add(user)
    return user


def test_demo_operators_open_the_reports_and_ideas_admin(client, two_worlds):
    mine, theirs, _ = two_worlds
    client.force_login(_demo_operator(mine))
    for url in ["/admin/communities/report/", "/admin/communities/idea/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Mine fans" in response.content.decode() and "Theirs fans" not in (
            response.content.decode()
        )
    report = Report.objects.get(community__brand=mine)
    assert client.get(f"/admin/communities/report/{report.pk}/change/").status_code == 200


def test_existing_operator_groups_get_the_reports_and_ideas_permissions():
    from django.apps import apps

    migration = importlib.import_module(
        "storefront.migrations.0001_operators_moderate_reports_and_ideas"
    )
    group = Group.objects.create(name="Brand operators")
    other = Group.objects.create(name="Support")
    migration.grant(apps, None)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert codenames == {"view_report", "change_report", "view_idea", "change_idea"}
    assert not other.permissions.exists()


# --- every image an admin form takes is verified --------------------------------------------


def _image(fmt: str, size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, format=fmt)
    return out.getvalue()


def test_every_admin_image_field_goes_through_the_upload_verification(two_worlds):
    mine, theirs, operator = two_worlds
    request = _request(UserFactory(is_staff=True, is_superuser=True))
    seen = []
    for model, model_admin in admin.site._registry.items():
        admins = [model_admin, *model_admin.get_inline_instances(request)]
        for each in admins:
            form = (
                each.get_formset(request).form
                if hasattr(each, "get_formset")
                else each.get_form(request)
            )
            for name, field in form.base_fields.items():
                if isinstance(field, forms.ImageField):
                    seen.append(f"{model.__name__}.{name}")
                    assert issubclass(form, VerifiedImagesModelForm) or hasattr(
                        form, f"clean_{name}"
                    ), f"{type(each).__name__}.{name} takes images unverified"
    assert "Brand.logo" in seen and "Product.image" in seen


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: _image("BMP"), "Upload a JPEG, PNG, WebP or GIF image."),
        (lambda: _image("PNG", (6000, 6000)), "6000 x 6000 pixels"),
        (lambda: b"GIF89a not really", "Upload a valid image"),
    ],
)
def test_a_bad_brand_logo_is_a_form_error(client, two_worlds, upload, message):
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    before = Brand.objects.get(pk=mine.pk).logo.name
    response = client.post(
        f"/admin/catalog/brand/{mine.pk}/change/",
        {
            "name": mine.name,
            "story": "Ours",
            "logo": SimpleUploadedFile("logo.png", upload(), "image/png"),
        },
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Brand.objects.get(pk=mine.pk).logo.name == before


def test_a_good_brand_logo_is_re_encoded_and_shrunk(client, two_worlds):
    mine, theirs, operator = two_worlds
    client.force_login(operator)
    response = client.post(
        f"/admin/catalog/brand/{mine.pk}/change/",
        {
            "name": mine.name,
            "story": "Ours",
            "logo": SimpleUploadedFile("logo.png", _image("PNG", (1200, 900)), "image/png"),
            "staff_refund_limit": "100.00",
        },
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.logo.name.endswith(".jpg")
    with Image.open(mine.logo.open()) as stored:
        assert stored.size == (512, 384)


def test_community_admin_pages_show_members_as_text_to_operators(client, two_worlds):
    """Reports, ideas, posts and a community's members: the operator may not open the user
    admin, so the people on those pages are text, not links that answer 403."""
    from communities.models import Idea, Report
    from reviews.models import Review

    mine, _, operator = two_worlds
    community = Community.objects.get(brand=mine)
    post = community.posts.get()
    report = Report.objects.get(community=community)
    idea = Idea.objects.get(community=community)
    review = Review.objects.filter(product__brand=mine).first()
    client.force_login(operator)
    for url, person in [
        (f"/admin/communities/report/{report.pk}/change/", report.reporter),
        (f"/admin/communities/idea/{idea.pk}/change/", idea.author),
        (f"/admin/communities/post/{post.pk}/change/", post.author),
        (f"/admin/communities/community/{community.pk}/change/", post.author),
        (f"/admin/reviews/review/{review.pk}/change/", review.user),
    ]:
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert str(person) in html, url
        assert f"/admin/accounts/user/{person.pk}/" not in html, url
        for link in _admin_links(html):
            assert client.get(link).status_code != 403, f"{url} links to {link}"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    html = client.get(f"/admin/communities/report/{report.pk}/change/").content.decode()
    assert f"/admin/accounts/user/{report.reporter.pk}/" in html
