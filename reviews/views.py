from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import product_visible
from reviews.forms import ReviewForm, ReviewReportForm
from reviews.models import Review
from reviews.selectors import wishlist_products
from reviews.services import review_delete, review_report, review_save, wishlist_toggle


def _review_anchor(product) -> str:
    return f"{product.get_absolute_url()}#reviews"


@login_required
@require_POST
def review_submit(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(product_visible(), slug=slug)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            review_save(product=product, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Thank you: your review is published.")
    else:
        messages.error(
            request,
            "Your review was not saved: choose a rating from 1 to 5 "
            "and keep the text under 5,000 characters.",
        )
    return redirect(_review_anchor(product))


@login_required
@require_POST
def review_remove(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(Review, pk=pk, user=request.user)
    review_delete(review=review, user=request.user)
    messages.success(request, "Your review was deleted.")
    return redirect(_review_anchor(review.product))


@login_required
@require_POST
def review_report_submit(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(
        Review.objects.select_related("product"),
        pk=pk,
        is_hidden=False,
        product__in=product_visible(),
    )
    form = ReviewReportForm(request.POST)
    if form.is_valid():
        try:
            review_report(review=review, reporter=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Thanks, a moderator will look at this review.")
    else:
        messages.error(request, "Say why this review should be looked at.")
    return redirect(_review_anchor(review.product))


@login_required
@require_GET
def wishlist(request: HttpRequest) -> HttpResponse:
    page = Paginator(wishlist_products(user=request.user), 24).get_page(request.GET.get("page"))
    return render(
        request, "reviews/wishlist.html", {"page_obj": page, "products": page.object_list}
    )


@login_required
@require_POST
def wishlist_toggle_view(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(product_visible(), pk=product_id)
    on_list = wishlist_toggle(user=request.user, product=product)
    if request.htmx:
        return render(
            request, "reviews/_wishlist_button.html", {"product": product, "on_wishlist": on_list}
        )
    messages.success(
        request, f"{product.name} was {'added to' if on_list else 'removed from'} your wishlist."
    )
    if _safe_next(request):  # a path, never a view name for redirect() to reverse
        return HttpResponseRedirect(request.POST["next"])
    return redirect(product.get_absolute_url())


def _safe_next(request: HttpRequest) -> bool:
    return url_has_allowed_host_and_scheme(
        request.POST.get("next"),
        allowed_hosts={request.get_host()},
        require_https=request.is_secure(),
    )
