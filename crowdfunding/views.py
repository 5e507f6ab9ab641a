"""The fans' campaign pages: the campaigns, a campaign with its live progress, rewards,
stretch goals, updates and comments, the pledge form, and the backer's pledges and tickets.
Views parse, authorize, call one service or selector, render; the rules live in
crowdfunding.services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crowdfunding.book import PLEDGE_BOOK
from crowdfunding.forms import CommentForm, PledgeForm, ReportForm
from crowdfunding.models import CampaignComment, PledgeStatus, RewardKind
from crowdfunding.selectors import (
    campaign_for,
    campaign_listing,
    campaign_page,
    campaign_progress,
    my_campaigns,
    pledge_of,
    update_for,
)
from crowdfunding.services import (
    campaign_follow,
    comment_create,
    comment_report,
    pledge_cancel,
    pledge_change,
    pledge_create,
    pledge_pay_again,
)
from orders.forms import AddressForm, CardForm
from payments.commitments.pages import (
    AuthPage,
    commitment_authenticate_view,
    commitment_payment_awaiting_action,
)
from payments.models import PaymentStatus, SavedCard
from payments.providers.base import CardError
from payments.providers.registry import provider_get


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _stripe_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY if provider_get().name == "stripe" else ""


@require_GET
def campaign_index(request: HttpRequest) -> HttpResponse:
    return render(request, "crowdfunding/index.html", {"listing": campaign_listing()})


def _render_detail(request, campaign, *, forms=None, status=200) -> HttpResponse:
    page = campaign_page(campaign=campaign, user=request.user)
    context = {"page": page, "campaign": campaign, "progress": page.progress}
    if request.user.is_authenticated and page.progress.is_open and page.my_pledge is None:
        form, address_form, card_form = forms or (
            PledgeForm(tiers=page.tiers, initial={"tier": request.GET.get("tier")}),
            AddressForm(prefix="address", use_required_attribute=False),
            CardForm(saved_cards=page.cards),
        )
        context.update(
            form=form,
            address_form=address_form,
            card_form=card_form,
            saved_cards=page.cards,
            request_key=uuid.uuid4().hex,
            stripe_publishable_key=_stripe_key(),
        )
    if request.user.is_authenticated:
        context["comment_form"] = CommentForm()
    return render(request, "crowdfunding/detail.html", context, status=status)


@require_GET
def campaign_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_detail(request, campaign_for(slug=slug, user=request.user))


@require_GET
def campaign_progress_fragment(request: HttpRequest, slug: str) -> HttpResponse:
    """The progress block alone, polled by htmx every 10 seconds while a campaign is live."""
    campaign = campaign_for(slug=slug, user=request.user)
    html = render_to_string(
        "crowdfunding/_progress.html",
        {"campaign": campaign, "progress": campaign_progress(campaign=campaign)},
    )
    return HttpResponse(html)


def _address(tier, address_form) -> dict | None:
    """The shipping address a shipped reward needs (None: the form has errors)."""
    if tier is None or tier.kind != RewardKind.SHIPPED:
        return {}
    return address_form.cleaned_data if address_form.is_valid() else None


def _card(card_form, cards: list[SavedCard]):
    chosen = card_form.cleaned_data.get("saved_card")
    saved = next((card for card in cards if card.pk == chosen), None)
    if chosen and saved is None:
        card_form.add_error("saved_card", _("Choose one of your cards."))
        return None, False
    return saved, True


@login_required
@require_http_methods(["GET", "POST"])
def pledge_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":  # back from signing in: the form is on the campaign page
        return redirect(reverse("crowdfunding:detail", kwargs={"slug": slug}) + "#pledge")
    campaign = campaign_for(slug=slug, user=request.user)
    tiers = list(campaign.tiers.all())
    cards = list(SavedCard.objects.filter(user=request.user, deleted_at__isnull=True))
    form = PledgeForm(request.POST, tiers=tiers)
    address_form = AddressForm(request.POST, prefix="address", use_required_attribute=False)
    card_form = CardForm(request.POST, saved_cards=cards)
    if form.is_valid() and card_form.is_valid():
        tier = form.cleaned_data["tier"]
        address = _address(tier, address_form)
        saved_card, ok = _card(card_form, cards)
        if ok and address is not None:
            try:
                pledge = pledge_create(
                    campaign=campaign,
                    user=request.user,
                    tier=tier,
                    amount=form.cleaned_data["amount"],
                    address=address,
                    request_key=form.cleaned_data["request_key"] or uuid.uuid4().hex,
                    saved_card=saved_card,
                    card=None if saved_card else card_form.card_input(),
                )
            except CardError as exc:
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                messages.success(
                    request,
                    _("Thank you! You back %(title)s. Your card is charged only at the deadline.")
                    % {"title": campaign.title},
                )
                return redirect(pledge.get_absolute_url())
    return _render_detail(request, campaign, forms=(form, address_form, card_form), status=400)


@login_required
@require_GET
def my_campaigns_view(request: HttpRequest) -> HttpResponse:
    return render(request, "crowdfunding/mine.html", {"mine": my_campaigns(user=request.user)})


def _pledge_context(request, pledge, **extra) -> dict:
    tiers = list(pledge.campaign.tiers.all())
    context = {"pledge": pledge, "campaign": pledge.campaign, "tiers": tiers, **extra}
    if pledge.status == PledgeStatus.HELD and campaign_progress(campaign=pledge.campaign).is_open:
        context.setdefault(
            "change_form",
            PledgeForm(tiers=tiers, initial={"tier": pledge.tier_id, "amount": pledge.amount}),
        )
        context.setdefault(
            "address_form", AddressForm(prefix="address", use_required_attribute=False)
        )
    if pledge.status == PledgeStatus.PAYMENT_FAILED:
        cards = list(SavedCard.objects.filter(user=request.user, deleted_at__isnull=True))
        context.setdefault("card_form", CardForm(saved_cards=cards))
        context.update(saved_cards=cards, stripe_publishable_key=_stripe_key())
    context["ticket"] = getattr(pledge, "ticket", None)
    context["awaiting_action"] = commitment_payment_awaiting_action(
        book=PLEDGE_BOOK, commitment=pledge
    )
    return context


@login_required
@require_GET
def pledge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pledge = pledge_of(user=request.user, pk=pk)
    return render(request, "crowdfunding/pledge.html", _pledge_context(request, pledge))


@login_required
@require_POST
def pledge_change_view(request: HttpRequest, pk: int) -> HttpResponse:
    pledge = pledge_of(user=request.user, pk=pk)
    tiers = list(pledge.campaign.tiers.all())
    form = PledgeForm(request.POST, tiers=tiers)
    address_form = AddressForm(request.POST, prefix="address", use_required_attribute=False)
    if form.is_valid():
        tier = form.cleaned_data["tier"]
        address = _address(tier, address_form) if tier and tier.pk != pledge.tier_id else {}
        if address is not None:
            try:
                pledge_change(
                    pledge=pledge,
                    user=request.user,
                    amount=form.cleaned_data["amount"],
                    tier=tier,
                    address=address,
                )
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                messages.success(request, _("Your pledge is changed."))
                return redirect(pledge.get_absolute_url())
    context = _pledge_context(request, pledge, change_form=form, address_form=address_form)
    return render(request, "crowdfunding/pledge.html", context, status=400)


@login_required
@require_POST
def pledge_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    pledge = pledge_of(user=request.user, pk=pk)
    try:
        pledge_cancel(pledge=pledge, user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, _("Your pledge is cancelled. Nothing will be charged."))
    return redirect(pledge.get_absolute_url())


@login_required
@require_POST
def pledge_pay_view(request: HttpRequest, pk: int) -> HttpResponse:
    pledge = pledge_of(user=request.user, pk=pk)
    cards = list(SavedCard.objects.filter(user=request.user, deleted_at__isnull=True))
    card_form = CardForm(request.POST, saved_cards=cards)
    if card_form.is_valid():
        saved_card, ok = _card(card_form, cards)
        if ok:
            try:
                payment = pledge_pay_again(
                    pledge=pledge,
                    user=request.user,
                    saved_card=saved_card,
                    card=None if saved_card else card_form.card_input(),
                )
            except CardError as exc:
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                card_form.add_error(None, _errors(exc))
            else:
                if payment.status == PaymentStatus.SUCCEEDED:
                    messages.success(request, _("Paid. Thank you for backing this campaign!"))
                elif payment.status == PaymentStatus.REQUIRES_ACTION:
                    return redirect("crowdfunding:pledge_authenticate", pk=pledge.pk)
                else:
                    messages.error(request, payment.failure_message or _("The card was declined."))
                return redirect(pledge.get_absolute_url())
    context = _pledge_context(request, pledge, card_form=card_form)
    return render(request, "crowdfunding/pledge.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def pledge_authenticate(request: HttpRequest, pk: int) -> HttpResponse:
    """3-D Secure for the pledge's charge (the engine's page): after the close, or when a
    pay-again in the fix-payment window needs the bank. Pledges take no deposit."""
    pledge = pledge_of(user=request.user, pk=pk)
    return commitment_authenticate_view(
        request,
        book=PLEDGE_BOOK,
        commitment=pledge,
        context={"pledge": pledge, "campaign": pledge.campaign},
        page=AuthPage(
            purpose=_("your pledge to %(title)s") % {"title": pledge.campaign.title},
            back_url=pledge.get_absolute_url(),
            back_label=_("Back to your pledge"),
        ),
        after_deposit=lambda request, payment: redirect(pledge.get_absolute_url()),
    )


@login_required
@require_POST
def follow_view(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_for(slug=slug, user=request.user)
    follow = request.POST.get("follow") != "0"
    campaign_follow(campaign=campaign, user=request.user, follow=follow)
    messages.success(
        request,
        _("You will hear about this campaign.") if follow else _("You no longer follow it."),
    )
    return redirect(campaign.get_absolute_url())


@login_required
@require_POST
def comment_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_for(slug=slug, user=request.user)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            comment_create(campaign=campaign, author=request.user, body=form.cleaned_data["body"])
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            return redirect(campaign.get_absolute_url() + "#comments")
    else:
        messages.error(request, _("Write a comment of at most 5,000 characters."))
    return redirect(campaign.get_absolute_url() + "#comments")


@login_required
@require_POST
def comment_report_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_for(slug=slug, user=request.user)
    comment = CampaignComment.objects.filter(
        campaign=campaign, pk=pk, hidden_at__isnull=True
    ).first()
    if comment is None:
        raise Http404("No such comment")
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why this should be looked at."))
    else:
        try:
            comment_report(
                comment=comment, reporter=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        except PermissionDenied:
            raise
        else:
            messages.success(request, _("Thank you: the brand will look at it."))
    return redirect(campaign.get_absolute_url() + "#comments")


@require_GET
def update_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_for(slug=slug, user=request.user)
    update = update_for(campaign=campaign, user=request.user, pk=pk)
    return render(request, "crowdfunding/update.html", {"campaign": campaign, "update": update})
