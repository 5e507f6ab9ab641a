"""Eight weeks of demo history, so that an operator's dashboard has something to show: fans
who joined each brand's community week by week, posted and liked in the weeks after, and
bought (orders paid on days spread over the weeks, one partly refunded), a month of product
page views, and posts waiting in the moderation queue.

Everything is made through the services, as a fan would make it, then dated back: the
services stamp "now", and a demo with a single day of history has no charts."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.db import transaction

from accounts.models import User
from catalog.models import Brand, Product, ProductStatus, ProductViewDay, Variant
from communities.models import Community, CommunityKind, Membership, Post, Reaction
from communities.moderation import report_create
from communities.services import community_join, post_create, post_like_toggle
from console.selectors import WEEKS, store_today, store_zone
from orders.fulfilment import order_part_refund
from orders.models import Cart, Order, OrderEvent, OrderRefund
from orders.services import cart_add, order_pay, order_place
from payments.models import Payment
from payments.services import card_save
from storefront.demo_orders import DEMO_ADDRESS

HISTORY_FANS = 24  # fan01@fans.example ...: three new members a week per brand
VIEW_DAYS = 30
SEED = 20261202
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
POSTS = [
    ("Unboxing day", "It arrived this morning: first impressions below."),
    ("Firmware wish list", "What should the next update fix first?"),
    ("Travel case?", "Which case survives a backpack?"),
]
REPORTS = [("Spam link in the first line", 0), ("Selling fakes", 1)]


def _at(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=store_zone())


def _fans() -> list[User]:
    emails = [f"fan{n:02d}@fans.example" for n in range(1, HISTORY_FANS + 1)]
    have = {u.email: u for u in User.objects.filter(email__in=emails)}
    password = make_password(None)  # history fans never sign in: no password to guess
    fans = []
    for n, email in enumerate(emails, start=1):
        user = have.get(email) or User.objects.create(
            email=email, display_name=f"Fan {n:02d}", password=password
        )
        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        fans.append(user)
    return fans


def _backdate(model, pk: int, **fields) -> None:
    model.objects.filter(pk=pk).update(**fields)


def _buy(fan: User, variant: Variant, when: datetime) -> Order:
    cart, _ = Cart.objects.get_or_create(user=fan)
    cart_add(cart=cart, variant=variant, quantity=1)
    order = order_place(
        user=fan,
        cart=cart,
        shipping_method="standard",
        address={**DEMO_ADDRESS, "full_name": fan.public_name},
    )
    card = fan.saved_cards.filter(deleted_at__isnull=True).first() or card_save(user=fan, card=CARD)
    payment = order_pay(order=order, saved_card=card, user=fan)
    _backdate(Order, order.pk, created_at=when, paid_at=when + timedelta(minutes=2))
    _backdate(Payment, payment.pk, created_at=when + timedelta(minutes=2))
    OrderEvent.objects.filter(order=order).update(created_at=when + timedelta(minutes=2))
    return order


def _brand_history(brand: Brand, community: Community, fans: list[User], rng) -> None:
    today = store_today()
    first_monday = today - timedelta(days=today.weekday(), weeks=WEEKS - 1)
    operator = brand.team.filter(role="owner").first()
    in_stock = Variant.objects.filter(
        product__brand=brand, product__status=ProductStatus.ACTIVE, stock__gte=3
    )

    def variant(n: int) -> Variant | None:  # among the five best stocked: never sold out
        best = list(in_stock.order_by("-stock", "pk")[:5])
        return best[n % len(best)] if best else None

    orders = []
    for n, fan in enumerate(fans):
        week = n % WEEKS
        joined = min(first_monday + timedelta(weeks=week, days=rng.randrange(5)), today)
        membership = community_join(community=community, user=fan)
        _backdate(Membership, membership.pk, joined_at=_at(joined, 10))
        # Fewer of each later cohort stay active, as in any community.
        for offset in range(WEEKS - week):
            day = joined + timedelta(weeks=offset, days=1)
            if day > today or rng.random() > 0.7 - 0.08 * offset:
                continue
            if offset % 2 == 0:
                title, body = POSTS[(n + offset) % len(POSTS)]
                post = post_create(
                    community=community, author=fan, title=title, body=body, rate_limited=False
                )
                _backdate(Post, post.pk, created_at=_at(day, 18))
            else:
                post = Post.objects.filter(community=community).exclude(author=fan).last()
                if post and post_like_toggle(post=post, user=fan):
                    Reaction.objects.filter(post=post, user=fan).update(created_at=_at(day, 20))
            if offset and rng.random() < 0.35 and (chosen := variant(n + offset)):
                orders.append(_buy(fan, chosen, _at(day, 12)))
    # A sale in every week, whichever weekday the demo is seeded on (the random ones above
    # skip days after today, and so draw differently from one weekday to the next).
    for week in range(WEEKS):
        if chosen := variant(week):
            day = min(first_monday + timedelta(weeks=week, days=2), today)
            orders.append(_buy(fans[(week * 3 + 1) % len(fans)], chosen, _at(day, 9)))
    # The last fortnight day by day, so the daily chart has a bar most days.
    for days_ago in range(13, -1, -2):
        if chosen := variant(days_ago):
            when = _at(today - timedelta(days=days_ago), 11)
            orders.append(_buy(fans[days_ago % len(fans)], chosen, when))
    if orders and operator:
        part = orders[0].parts.get(brand=brand)
        refund = order_part_refund(
            part=part,
            actor=operator.user,
            amount=(part.total / 2).quantize(Decimal("0.01")),
            reason="Arrived scratched",
        )
        paid_at = Order.objects.values_list("paid_at", flat=True).get(pk=orders[0].pk)
        _backdate(OrderRefund, refund.pk, created_at=paid_at + timedelta(days=3))
    products = Product.objects.filter(brand=brand, status=ProductStatus.ACTIVE)
    ProductViewDay.objects.bulk_create(
        [
            ProductViewDay(
                product=product, day=today - timedelta(days=d), views=rng.randrange(5, 60)
            )
            for product in products
            for d in range(VIEW_DAYS)
        ],
        ignore_conflicts=True,
    )
    posts = list(Post.objects.filter(community=community).order_by("-pk")[: len(REPORTS)])
    for (reason, who), post in zip(REPORTS, posts, strict=False):
        others = [fan for fan in reversed(fans) if fan != post.author]  # nobody reports their own
        report_create(reporter=others[who % len(others)], reason=reason, post=post)


def demo_seed_history() -> int:
    """History for each brand's fan community; the brands that have it already are left."""
    rng = random.Random(SEED)  # noqa: S311 - demo data, the same every time
    fans = _fans()
    seeded = 0
    for community in Community.objects.filter(kind=CommunityKind.BRAND).select_related("brand"):
        if community.brand is None:
            continue
        if Membership.objects.filter(community=community, user__in=fans).exists():
            continue
        with transaction.atomic():
            _brand_history(community.brand, community, fans, rng)
        seeded += 1
    return seeded
