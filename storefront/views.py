"""Pages that compose several apps (layer 5 in DESIGN.md)."""

from functools import cached_property

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import get_template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_POST

from catalog.listing_version import LISTING_VERSION, PRODUCT_VERSION, listing_version
from catalog.product_views import product_view_count
from catalog.selectors import (
    ProductFilters,
    ProductListingPaginator,
    brand_list,
    product_page,
    product_search,
    product_visible,
    variant_choose,
)
from catalog.stock_alerts import stock_alert_cancel, stock_alert_subscribe, stock_alert_waiting
from communities.models import Community
from communities.selectors import communities_featured
from config.page_cache import PageKey, cached_page, digest, rendering
from config.page_cache import refuse as refuse_page_cache
from config.version_tokens import current_tokens
from crowdfunding.models import Campaign
from crowdfunding.selectors import campaigns_live
from orders.page_versions import tokens_and_cart_count
from preorders.models import PreorderBatch
from preorders.selectors import batches_open
from reviews.forms import ReviewForm, ReviewReportForm
from reviews.review_cache import (
    FAN_MARKS,
    REVIEWS_FRAGMENT_SECONDS,
    REVIEWS_VERSION,
    reviews_overlay,
    reviews_version,
)
from reviews.selectors import (
    REVIEWS_ON_PRODUCT_PAGE,
    fan_marks,
    product_reviews,
    review_of_user,
    wishlist_contains,
)
from storefront.selectors import (
    brand_community,
    fan_summary,
    page_by_slug,
    product_id_for,
    product_open_batch,
)

HOME_BATCHES = 4
BRAND_BATCHES = 8
OFFER_BATCHES = 3
HOME_CAMPAIGNS = 3
OFFER_CAMPAIGNS = 3


class HomeShowcase:
    """The home page's sections, the same for every visitor. The template caches them as one
    fragment for `seconds`, and reads these only when the fragment has expired: a warm home
    page runs no query of its own. The whole page is cached for as long again (the header's
    per-viewer parts filled in), so lists and counters there may lag by twice that; the pages
    they link to are live."""

    seconds = 30

    @cached_property
    def communities(self) -> list[Community]:
        return list(communities_featured())

    @cached_property
    def open_batches(self) -> list[PreorderBatch]:
        return batches_open(limit=HOME_BATCHES)

    @cached_property
    def live_campaigns(self) -> list[Campaign]:
        return campaigns_live(limit=HOME_CAMPAIGNS)


def _home_key(request: HttpRequest) -> PageKey:
    return PageKey(parts=())  # the showcase's own lifetime is its version


@require_GET
@cached_page(key=_home_key, seconds=HomeShowcase.seconds)
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"showcase": HomeShowcase()})


def _variant_images(images: list, variant) -> list:
    """The product's images with the chosen variant's own (tagged with one of its option
    values, e.g. the red ones) first, so the main picture follows the chosen colour."""
    if variant is None:
        return list(images)
    own = [image for image in images if image.shows(variant)]
    return own + [image for image in images if image not in own]


def _variant_context(request: HttpRequest, page, variant, batch) -> dict:
    """What the variant panel shows: price, stock, and for an out-of-stock variant the
    back-in-stock alert and the product's open pre-order batch."""
    return {
        "product": page.product,
        "variant": variant,
        "options": page.options,
        "images": _variant_images(page.product.ordered_images, variant),
        "open_batch": batch,
        "stock_alert": (
            stock_alert_waiting(user=request.user, variant=variant)
            if variant is not None and not variant.is_available
            else None
        ),
    }


def _chosen_variant(request: HttpRequest, page):
    chosen = {name: request.GET[name] for name in page.options if name in request.GET}
    return variant_choose(page.variants, variant_id=request.GET.get("variant"), chosen=chosen)


def _reviews_fragment(request: HttpRequest, product, own_review) -> SafeString:
    """The product's review list, rendered once per version of its reviews for visitors and
    once for everyone signed in (their own review marked: reviews.review_cache)."""
    signed_in = request.user.is_authenticated
    key = ":".join(
        [
            "storefront:reviews",
            str(product.pk),
            reviews_version(product_id=product.pk),
            str(product.updated_at.timestamp()),
            "member" if signed_in else "reader",
            get_language() or "",
        ]
    )
    html = cache.get(key)
    if html is None:
        html = get_template("storefront/_product_reviews.html").render(
            {
                "reviews": list(product_reviews(product=product)[:REVIEWS_ON_PRODUCT_PAGE]),
                "product": product,
                "overlay": signed_in,
                "request": request,
            }
        )
        cache.set(key, html, REVIEWS_FRAGMENT_SECONDS)
    if signed_in:
        badge = format_html('<span class="badge badge-brand">{}</span>', gettext("Your review"))
        html = reviews_overlay(html, own_review_id=own_review and own_review.pk, badge=badge)
    return mark_safe(html)  # noqa: S308 - our own template's output


# slug -> (product id, the catalogue's version when it was read): a visitor's product page
# costs no query and one round trip to the cache. Every product save (a slug changed) moves
# the catalogue's version, which then sends the next visitor to the database again.
_product_ids: dict[str, tuple[int, str]] = {}


def _versions(request: HttpRequest, product_id: int) -> list[str]:
    """The page's tokens; signed in, their marks token and their cart's count as well: one
    round trip."""
    tokens = [(LISTING_VERSION, ""), (PRODUCT_VERSION, product_id), (REVIEWS_VERSION, product_id)]
    if not request.user.is_authenticated:
        return current_tokens(*tokens)
    return tokens_and_cart_count(request, *tokens, (FAN_MARKS, request.user.pk))


def _known_product(request: HttpRequest, slug: str) -> tuple[int, list[str]] | None:
    known = _product_ids.get(slug)
    if known is not None:
        product_id, listing_then = known
        versions = _versions(request, product_id)
        if versions[0] == listing_then:
            return product_id, versions
    listing = listing_version()
    product_id = product_id_for(slug=slug)
    if product_id is None:
        return None
    if len(_product_ids) >= 10_000:
        _product_ids.clear()
    _product_ids[slug] = (product_id, listing)
    return product_id, _versions(request, product_id)


# (fan, product, their marks token, the product's reviews version) -> fan_marks: the tokens
# name one state of the fan's review and wishlist mark, so a copy kept here is as fresh.
_fan_marks: dict[tuple[int, int, str, str], tuple] = {}


def _product_key(request: HttpRequest, slug: str) -> PageKey | None:
    """A product page is named by the product's and its reviews' versions, the catalogue's
    (brand and category names, the slug) and, signed in, the fan's own review and wishlist
    mark (read once per change of their marks token, then no query). Not cached: a chosen
    variant (?variant=, options), nor a page whose variant is out of stock (it offers a
    stock alert and the open pre-order batch)."""
    if request.GET:
        return None
    fan_id = request.user.pk if request.user.is_authenticated else None
    found = _known_product(request, slug)
    if not found:
        return None  # the view's 404
    product_id, versions = found
    if fan_id is None:
        return PageKey(parts=(*versions, digest()), state=product_id)
    *versions, marks_token = versions
    memo = (fan_id, product_id, marks_token, versions[2])
    marks = _fan_marks.get(memo)
    if marks is None:
        marks = fan_marks(product_id=product_id, user=request.user)
        if marks is None:
            return None  # gone meanwhile: the view's 404
        if len(_fan_marks) >= 10_000:
            _fan_marks.clear()
        _fan_marks[memo] = marks
    # Fans with the same marks share one rendering (no one's mark is in another's page).
    return PageKey(parts=(*versions, digest(product_id, *marks)), state=product_id)


def _product_overlay(request: HttpRequest, html: str, product_id: int) -> str:
    product_view_count(product_id=product_id)  # Redis only: the funnel's first step
    return html


@require_GET
@cached_page(key=_product_key, overlay=_product_overlay)
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    page = product_page(slug=slug)
    if not rendering(request):  # else counted by the overlay
        product_view_count(product_id=page.product.pk)  # Redis only: the funnel's first step
    variant = _chosen_variant(request, page)
    own_review = review_of_user(product=page.product, user=request.user)
    # The batch only where the panel offers it (out of stock); the fan club and the batch
    # for everyone come in the links fragment, so the page keeps its query budget.
    batch = (
        product_open_batch(product=page.product) if variant and not variant.is_available else None
    )
    if variant is None or not variant.is_available:
        refuse_page_cache(request)  # the stock alert and the batch are not in the key
    context = {
        **_variant_context(request, page, variant, batch),
        "variants": page.variants,
        "breadcrumbs": page.breadcrumbs,
        "reviews_html": _reviews_fragment(request, page.product, own_review),
        "own_review": own_review,
        "review_form": ReviewForm(
            initial={
                "rating": own_review.rating,
                "title": own_review.title,
                "body": own_review.body,
            }
            if own_review
            else None
        ),
        "report_form": ReviewReportForm(),
        "on_wishlist": wishlist_contains(user=request.user, product=page.product),
    }
    return render(request, "storefront/product_detail.html", context)


@require_GET
def product_variant(request: HttpRequest, slug: str) -> HttpResponse:
    """The chosen variant's panel and picture: an htmx fragment (the panel, and the gallery
    out of band), or without JavaScript a redirect to the product page showing it."""
    page = product_page(slug=slug)
    variant = _chosen_variant(request, page)
    if not request.htmx:
        url = page.product.get_absolute_url()
        return redirect(f"{url}?variant={variant.pk}" if variant else url)
    batch = (
        product_open_batch(product=page.product) if variant and not variant.is_available else None
    )
    context = _variant_context(request, page, variant, batch)
    return render(request, "storefront/_product_variant.html", context)


@require_GET
def product_links(request: HttpRequest, slug: str) -> HttpResponse:
    """The product's fan club and open pre-order batch: an htmx fragment of the product page
    (catalog knows neither communities nor pre-orders); without htmx, the product page."""
    product = get_object_or_404(product_visible().select_related("brand"), slug=slug)
    if not request.htmx:
        return redirect(product.get_absolute_url())
    return render(
        request,
        "storefront/_product_links.html",
        {
            "product": product,
            "community": brand_community(brand_id=product.brand_id),
            "open_batch": product_open_batch(product=product),
        },
    )


def _variant_of(request: HttpRequest, slug: str):
    page = product_page(slug=slug)
    variant = next((v for v in page.variants if str(v.pk) == request.POST.get("variant")), None)
    if variant is None:
        raise Http404("No such option")
    return page, variant


@require_POST
@login_required
def stock_alert_create(request: HttpRequest, slug: str) -> HttpResponse:
    page, variant = _variant_of(request, slug)
    try:
        stock_alert_subscribe(user=request.user, variant=variant)
    except ValidationError as error:
        messages.info(request, error.messages[0])
    else:
        messages.success(request, f"We will email you once when {variant} is back in stock.")
    return redirect(f"{page.product.get_absolute_url()}?variant={variant.pk}")


@require_POST
@login_required
def stock_alert_delete(request: HttpRequest, slug: str) -> HttpResponse:
    page, variant = _variant_of(request, slug)
    if stock_alert_cancel(user=request.user, variant=variant):
        messages.success(request, f"You will not be told when {variant} is back.")
    return redirect(f"{page.product.get_absolute_url()}?variant={variant.pk}")


@require_GET
def brand_detail(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(brand_list(), slug=slug)
    products = product_search(ProductFilters(brand=brand.slug, sort="newest"))
    page = ProductListingPaginator(products, 24).get_page(request.GET.get("page"))
    return render(
        request,
        "storefront/brand_detail.html",
        {
            "brand": brand,
            "page_obj": page,
            "products": page.object_list,
            "open_batches": batches_open(limit=BRAND_BATCHES, brand_id=brand.pk),
            "live_campaigns": campaigns_live(limit=BRAND_BATCHES, brand_id=brand.pk),
            "community": brand_community(brand_id=brand.pk),
        },
    )


@require_GET
def brand_offers(request: HttpRequest, slug: str) -> HttpResponse:
    """What the brand offers now, as a fragment for its community pages (loaded by htmx, so
    communities never imports the shop, pre-orders or campaigns)."""
    brand = get_object_or_404(brand_list(), slug=slug)
    products = list(product_search(ProductFilters(brand=brand.slug, sort="newest"))[:4])
    return render(
        request,
        "storefront/_brand_offers.html",
        {
            "brand": brand,
            "products": products,
            "open_batches": batches_open(limit=OFFER_BATCHES, brand_id=brand.pk),
            "live_campaigns": campaigns_live(limit=OFFER_CAMPAIGNS, brand_id=brand.pk),
        },
    )


@login_required
@require_GET
def my_summary(request: HttpRequest) -> HttpResponse:
    """The signed-in fan's own orders, pre-orders, pledges, posts and levels across every
    brand: a fragment for the profile page (accounts does not import the feature apps)."""
    return render(
        request, "storefront/_my_summary.html", {"summary": fan_summary(user=request.user)}
    )


@require_GET
def info_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Help, contact, shipping and returns, terms, privacy: edited in the admin."""
    page = page_by_slug(slug=slug)
    if page is None:
        raise Http404("No such page")
    return render(request, "storefront/page.html", {"page": page})
