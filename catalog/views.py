from urllib.parse import urlencode

from allauth.account.adapter import get_adapter as get_account_adapter
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from catalog.forms import ProductFilterForm
from catalog.listing_version import listing_version
from catalog.models import BrandInvitation, Category
from catalog.selectors import (
    ProductFilters,
    ProductListingPaginator,
    brand_list,
    category_breadcrumbs,
    category_by_path,
    category_children,
    product_cards_version,
    product_page,
    product_search,
    variant_choose,
)
from catalog.team import brand_invitation_accept, invitation_email_matches
from config.page_cache import PageKey, cached_page

PAGE_SIZE = 24
# A backstop: the catalogue's version names the page. The total on it (kept a minute by
# ProductListingPaginator) may so lag by up to two.
LISTING_SECONDS = 60


def _product_listing(request: HttpRequest, *, category: Category | None) -> HttpResponse:
    form = ProductFilterForm(request.GET or None)
    filters = ProductFilters(category=category)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        chosen_category = category
        if category is None and data["category"]:
            chosen_category = Category.objects.filter(path=data["category"]).first()
        filters = ProductFilters(
            q=data["q"],
            brand=data["brand"],
            category=chosen_category,
            price_min=data["price_min"],
            price_max=data["price_max"],
            in_stock=data["in_stock"],
            sort=data["sort"] or "relevance",
        )
    page = ProductListingPaginator(product_search(filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "filters": filters,
        "page_obj": page,
        "products": page.object_list,
        "grid_version": product_cards_version(page.object_list),
        "query_string": query.urlencode(),
        "brands": brand_list(),
        "category": category,
        "breadcrumbs": category_breadcrumbs(category) if category else [],
        "subcategories": category_children(category),
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "catalog/product_list.html", context, status=status)


def _listing_key(request: HttpRequest, path: str = "") -> PageKey:
    """A listing shows the catalogue as of its version; the path (with the query) is in
    every page's key. Nothing on it is the viewer's own but the header."""
    return PageKey(parts=(listing_version(),))


@require_GET
@cached_page(key=_listing_key, seconds=LISTING_SECONDS)
def product_list(request: HttpRequest) -> HttpResponse:
    return _product_listing(request, category=None)


@require_GET
@cached_page(key=_listing_key, seconds=LISTING_SECONDS)
def category_detail(request: HttpRequest, path: str) -> HttpResponse:
    return _product_listing(request, category=category_by_path(path))


@require_GET
def variant_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The chosen variant's price and availability: an htmx fragment, or (without
    JavaScript) a redirect to the product page showing that variant."""
    page = product_page(slug=slug)
    chosen = {name: request.GET[name] for name in page.options if name in request.GET}
    variant = variant_choose(page.variants, chosen=chosen)
    if not request.htmx:
        url = page.product.get_absolute_url()
        return redirect(f"{url}?variant={variant.pk}" if variant else url)
    return render(
        request,
        "catalog/_variant_panel.html",
        {"product": page.product, "variant": variant, "options": page.options},
    )


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link of a team invitation. Signed out: the invited address is marked verified
    for allauth's sign-up (the link reached it) and the page offers sign-up or sign-in,
    both coming back here. Signed in with the invited address: accept (POST) joins the
    team and opens the admin. Another address: says so."""
    invitation = get_object_or_404(BrandInvitation.objects.select_related("brand"), token=token)
    context = {"invitation": invitation, "status": invitation.status}
    if invitation.status != "open":
        if invitation.status == "accepted" and invitation.accepted_by_id == request.user.pk:
            return redirect("admin:index")
        return render(request, "catalog/invitation.html", context, status=410)
    if not request.user.is_authenticated:
        get_account_adapter(request).stash_verified_email(request, invitation.email)
        back = urlencode({"next": request.path})
        context["signup_url"] = f"{reverse('account_signup')}?{back}"
        context["login_url"] = f"{reverse('account_login')}?{back}"
        return render(request, "catalog/invitation.html", context)
    context["matches"] = invitation_email_matches(invitation=invitation, user=request.user)
    if request.method == "POST" and context["matches"]:
        try:
            brand_invitation_accept(invitation=invitation, user=request.user)
        except ValidationError as exc:
            context["error"] = " ".join(exc.messages)
            return render(request, "catalog/invitation.html", context, status=409)
        messages.success(
            request,
            _("Welcome to %(brand)s's team.") % {"brand": invitation.brand.name},
        )
        return redirect("admin:index")
    return render(request, "catalog/invitation.html", context)
