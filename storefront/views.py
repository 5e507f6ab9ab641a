"""Pages that compose several apps (layer 5 in DESIGN.md)."""

from functools import cached_property

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from catalog.selectors import (
    ProductFilters,
    ProductListingPaginator,
    brand_list,
    product_page,
    product_search,
    variant_choose,
)
from communities.models import Community
from communities.selectors import communities_featured
from preorders.models import PreorderBatch
from preorders.selectors import batches_open
from reviews.forms import ReviewForm, ReviewReportForm
from reviews.selectors import (
    REVIEWS_ON_PRODUCT_PAGE,
    product_reviews,
    review_of_user,
    wishlist_contains,
)

HOME_BATCHES = 4
BRAND_BATCHES = 8
OFFER_BATCHES = 3


class HomeShowcase:
    """The home page's sections, the same for every visitor. The template caches them as one
    fragment for `seconds`, and reads these only when the fragment has expired: a warm home
    page runs no query of its own. Lists and counters there may lag by that much; the pages
    they link to are live."""

    seconds = 30

    @cached_property
    def communities(self) -> list[Community]:
        return list(communities_featured())

    @cached_property
    def open_batches(self) -> list[PreorderBatch]:
        return batches_open(limit=HOME_BATCHES)

    live_campaigns: tuple = ()  # campaigns join when their app exists


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"showcase": HomeShowcase()})


@require_GET
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    page = product_page(slug=slug)
    chosen = {name: request.GET[name] for name in page.options if name in request.GET}
    variant = variant_choose(page.variants, variant_id=request.GET.get("variant"), chosen=chosen)
    own_review = review_of_user(product=page.product, user=request.user)
    context = {
        "product": page.product,
        "images": page.product.ordered_images,
        "variants": page.variants,
        "variant": variant,
        "options": page.options,
        "breadcrumbs": page.breadcrumbs,
        "reviews": product_reviews(product=page.product)[:REVIEWS_ON_PRODUCT_PAGE],
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
        },
    )


@require_GET
def brand_offers(request: HttpRequest, slug: str) -> HttpResponse:
    """What the brand offers now, as a fragment for its community pages (loaded by htmx, so
    communities never imports the shop or pre-orders). Campaigns join when they exist."""
    brand = get_object_or_404(brand_list(), slug=slug)
    products = list(product_search(ProductFilters(brand=brand.slug, sort="newest"))[:4])
    return render(
        request,
        "storefront/_brand_offers.html",
        {
            "brand": brand,
            "products": products,
            "open_batches": batches_open(limit=OFFER_BATCHES, brand_id=brand.pk),
        },
    )
