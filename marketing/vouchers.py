"""Vouchers at checkout: the price adjuster that orders.adjusters calls, and the writes of
vouchers (uses taken and given back, codes generated in bulk, scan claims).

Rules, and where each is enforced:
- one voucher per order: the cart holds one code (orders), and a use per order at most
  (UniqueConstraint marketing_use_one_per_order);
- a brand's voucher touches only its own lines (and its own share of the shipping) of a
  shared order: `_eligible` keeps only them;
- never negative: a discount is at most the lines it is on (here, and
  orders.adjusters._bounded, and the CheckConstraints of OrderLine/OrderPart/Order);
- the usage limit: conditional UPDATEs of `used` on the voucher and on the code inside the
  order's transaction, CheckConstraints behind them; however many checkouts at once, no more
  orders than the limit get it;
- once per customer: the uses' partial UniqueConstraints on (voucher, account) and
  (voucher, normalised email at the time): a changed email keeps the account's use, a second
  account on the same address (or a gmail dot/plus variant of it) meets the email's. The use
  is taken when the order is placed, so a payment waiting for 3-D Secure holds it;
- a cancelled or refunded order gives its use back (orders.listeners.order_voided_register).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from audit.services import audit_record
from catalog.models import Category
from formatting.formats import money
from marketing.models import (
    Voucher,
    VoucherClaim,
    VoucherCode,
    VoucherKind,
    VoucherScope,
    VoucherUse,
    code_generate,
)
from orders.adjusters import Adjustment, Basket, CodeRefused, PricedLine, code_normalise
from orders.fulfilment import amount_split
from orders.models import Order, OrderStatus
from orders.pricing import CODE_UNKNOWN

CENT = Decimal("0.01")
GMAIL = {"gmail.com", "googlemail.com"}


def email_key(email: str) -> str:
    """One key per mailbox: lower case, no "+tag"; for Gmail no dots and one domain."""
    local, _at, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def user_email_keys(user_id: int) -> set[str]:
    """The keys of every address the account has had on file (allauth's rows too)."""
    from allauth.account.models import EmailAddress

    emails = {User.objects.filter(pk=user_id).values_list("email", flat=True).first() or ""}
    emails |= set(EmailAddress.objects.filter(user_id=user_id).values_list("email", flat=True))
    return {email_key(e) for e in emails if e}


# --- pricing ----------------------------------------------------------------------------------


def _category_paths(voucher: Voucher) -> list[str]:
    return list(voucher.categories.values_list("path", flat=True))


def _eligible(voucher: Voucher, basket: Basket) -> list[PricedLine]:
    lines = [line for line in basket.lines if line.brand_id == voucher.brand_id]
    if voucher.scope == VoucherScope.PRODUCTS:
        products = set(voucher.products.values_list("pk", flat=True))
        lines = [line for line in lines if line.product_id in products]
    elif voucher.scope == VoucherScope.CATEGORIES:
        paths = _category_paths(voucher)
        lines = [
            line
            for line in lines
            if any(line.category_path == p or line.category_path.startswith(p + "/") for p in paths)
        ]
    return lines


def _for_what(voucher: Voucher) -> str:
    if voucher.scope == VoucherScope.PRODUCTS:
        names = ", ".join(voucher.products.values_list("name", flat=True)[:3])
        return _("%(products)s") % {"products": names}
    if voucher.scope == VoucherScope.CATEGORIES:
        names = ", ".join(str(c) for c in Category.objects.filter(vouchers=voucher)[:3])
        return _("%(brand)s in %(categories)s") % {"brand": voucher.brand.name, "categories": names}
    return voucher.brand.name


def voucher_label(voucher: Voucher) -> str:
    if voucher.scope == VoucherScope.SHIPPING:
        return _("%(value)s off %(brand)s shipping") % {
            "value": voucher.value_label,
            "brand": voucher.brand.name,
        }
    return _("%(value)s off %(what)s") % {"value": voucher.value_label, "what": _for_what(voucher)}


def voucher_check(*, code: VoucherCode, basket: Basket, now=None) -> list[PricedLine]:
    """The lines the code applies to, or CodeRefused saying why it does not apply."""
    voucher = code.voucher
    now = now or timezone.now()
    if code.user_id is not None and code.user_id != basket.user_id:
        raise CodeRefused(_(CODE_UNKNOWN))  # someone's personal code: as if it did not exist
    if voucher.claim_only and code.user_id is None:
        raise CodeRefused(_(CODE_UNKNOWN))
    if not voucher.is_active:
        raise CodeRefused(_("This code has ended."))
    if voucher.starts_at and now < voucher.starts_at:
        raise CodeRefused(
            _("This code starts on %(date)s.") % {"date": date_format(voucher.starts_at)}
        )
    if voucher.ends_at and now >= voucher.ends_at:
        raise CodeRefused(
            _("This code expired on %(date)s.") % {"date": date_format(voucher.ends_at)}
        )
    if (voucher.usage_limit is not None and voucher.used >= voucher.usage_limit) or (
        code.usage_limit is not None and code.used >= code.usage_limit
    ):
        raise CodeRefused(_("This code has been used up."))
    lines = _eligible(voucher, basket)
    if not lines:
        raise CodeRefused(
            _("This code is for %(what)s only, and none is in your cart.")
            % {"what": _for_what(voucher)}
        )
    spend = sum((line.line_total for line in lines), Decimal("0.00"))
    if voucher.min_spend and spend < voucher.min_spend:
        raise CodeRefused(
            _("Spend at least %(min)s on %(what)s to use this code (%(left)s to go).")
            % {
                "min": money(voucher.min_spend),
                "what": _for_what(voucher),
                "left": money(voucher.min_spend - spend),
            }
        )
    quantity = sum(line.quantity for line in lines)
    if voucher.min_quantity and quantity < voucher.min_quantity:
        raise CodeRefused(
            _("Buy at least %(count)s of %(what)s to use this code.")
            % {"count": voucher.min_quantity, "what": _for_what(voucher)}
        )
    if voucher.scope == VoucherScope.SHIPPING and not basket.shipping_shares.get(voucher.brand_id):
        raise CodeRefused(_("Shipping is already free for this order."))
    if basket.user_id is not None:
        if voucher.once_per_customer and _used_before(voucher, basket.user_id).exists():
            raise CodeRefused(_("You have already used this code."))
        if voucher.new_customers_only and _has_ordered(basket.user_id):
            raise CodeRefused(_("This code is for a first order only."))
    return lines


def _used_before(voucher: Voucher, user_id: int):
    """Uses that block this customer: by the account or any address it has had, except
    the account's own orders still waiting for payment (a new checkout replaces them)."""
    return (
        VoucherUse.objects.filter(voucher=voucher, released_at=None, once_per_customer=True)
        .filter(Q(user_id=user_id) | Q(email_key__in=user_email_keys(user_id)))
        .exclude(order__user_id=user_id, order__status=OrderStatus.PENDING_PAYMENT)
    )


def _has_ordered(user_id: int) -> bool:
    keys = user_email_keys(user_id)
    emails = Q(email__in=list(keys)) | Q(user_id=user_id)
    for key in keys:
        emails |= Q(email__iexact=key)
    return (
        Order.objects.filter(emails)
        .exclude(status__in=[OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED])
        .exists()
    )


def voucher_adjustment(*, code: VoucherCode, basket: Basket, lines: list[PricedLine]) -> Adjustment:
    voucher = code.voucher
    if voucher.scope == VoucherScope.SHIPPING:
        share = basket.shipping_shares.get(voucher.brand_id, Decimal("0.00"))
        off = (
            (share * voucher.value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            if voucher.kind == VoucherKind.PERCENT
            else min(voucher.value, share)
        )
        line_discounts, shipping_discounts = {}, {voucher.brand_id: off}
    else:
        spend = sum((line.line_total for line in lines), Decimal("0.00"))
        off = (
            (spend * voucher.value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            if voucher.kind == VoucherKind.PERCENT
            else min(voucher.value, spend)
        )
        shares = amount_split(amount=min(off, spend), weights=[line.line_total for line in lines])
        line_discounts = {
            line.variant_id: share for line, share in zip(lines, shares, strict=True) if share
        }
        shipping_discounts = {}
    return Adjustment(
        source=f"voucher:{voucher.pk}",
        code=code.code,
        label=voucher_label(voucher),
        line_discounts=line_discounts,
        shipping_discounts=shipping_discounts,
    )


class VoucherAdjuster:
    """The vouchers' price adjuster (orders.adjusters)."""

    def known(self, *, code: str) -> bool:
        return VoucherCode.objects.filter(code=code).exists()

    def quote(self, *, basket: Basket) -> Adjustment | None:
        code = VoucherCode.objects.select_related("voucher__brand").filter(code=basket.code).first()
        if code is None:
            return None
        lines = voucher_check(code=code, basket=basket)
        return voucher_adjustment(code=code, basket=basket, lines=lines)

    def claim(self, *, basket: Basket, adjustment: Adjustment, order: Order) -> None:
        voucher_use_take(code=adjustment.code, order=order, amount=adjustment.total)


# --- uses -------------------------------------------------------------------------------------


def voucher_use_take(*, code: str, order: Order, amount: Decimal) -> VoucherUse:
    """Inside order_place's transaction: take one use of the code for the order, or raise
    CodeRefused (the order then rolls back)."""
    from orders.fulfilment import order_transition
    from orders.services import order_payment_in_progress

    code_row = VoucherCode.objects.select_related("voucher").get(code=code)
    voucher, user = code_row.voucher, order.user
    keys = user_email_keys(user.pk)
    if voucher.once_per_customer:
        earlier = (
            VoucherUse.objects.select_for_update(of=("self",))
            .select_related("order")
            .filter(voucher=voucher, released_at=None, once_per_customer=True)
            .filter(Q(user=user) | Q(email_key__in=keys))
            .exclude(order=order)
            .order_by("pk")
        )
        for use in earlier:
            other = Order.objects.select_for_update().get(pk=use.order_id)
            if other.user_id != user.pk or other.status != OrderStatus.PENDING_PAYMENT:
                raise CodeRefused(_("You have already used this code."))
            if order_payment_in_progress(order=other) is not None:
                raise CodeRefused(
                    _(
                        "Your order %(number)s with this code is waiting for its payment to be "
                        "confirmed: finish or cancel it first."
                    )
                    % {"number": other.number}
                )
            # An unpaid earlier checkout of theirs: this one replaces it (and its use).
            order_transition(
                order=other,
                to=OrderStatus.CANCELLED,
                actor=user,
                note=f"Replaced by order {order.number}, which uses its voucher {code}",
            )
    taken = Voucher.objects.filter(
        Q(usage_limit__isnull=True) | Q(used__lt=F("usage_limit")), pk=voucher.pk
    ).update(used=F("used") + 1)
    taken = taken and VoucherCode.objects.filter(
        Q(usage_limit__isnull=True) | Q(used__lt=F("usage_limit")), pk=code_row.pk
    ).update(used=F("used") + 1)
    if not taken:
        raise CodeRefused(_("This code has just been used up."))
    use = VoucherUse(
        voucher=voucher,
        code=code_row,
        order=order,
        user=user,
        email_key=email_key(order.email or user.email),
        once_per_customer=voucher.once_per_customer,
        amount=amount,
    )
    try:
        with transaction.atomic():
            use.save()
    except IntegrityError as exc:  # a twin checkout by the same customer got there first
        raise CodeRefused(_("You have already used this code.")) from exc
    return use


def voucher_order_voided(*, order_id: int) -> None:
    """orders' listener: the whole order was cancelled or refunded, its use comes back."""
    uses = list(VoucherUse.objects.select_for_update().filter(order_id=order_id, released_at=None))
    for use in uses:
        VoucherUse.objects.filter(pk=use.pk).update(released_at=timezone.now())
        Voucher.objects.filter(pk=use.voucher_id, used__gt=0).update(used=F("used") - 1)
        VoucherCode.objects.filter(pk=use.code_id, used__gt=0).update(used=F("used") - 1)


# --- operators' edits ---------------------------------------------------------------------------

# What a voucher gives, to whom and when: the fields whose change is audited.
VOUCHER_AUDITED = (
    "brand_id",
    "name",
    "kind",
    "value",
    "scope",
    "min_spend",
    "min_quantity",
    "starts_at",
    "ends_at",
    "usage_limit",
    "once_per_customer",
    "new_customers_only",
    "claim_only",
    "is_active",
)


def voucher_targets(voucher: Voucher) -> dict[str, list[int]]:
    """The products and categories a voucher applies to, as ids: read before an edit."""
    if voucher.pk is None:
        return {"products": [], "categories": []}
    return {
        "products": sorted(voucher.products.values_list("pk", flat=True)),
        "categories": sorted(voucher.categories.values_list("pk", flat=True)),
    }


@transaction.atomic
def voucher_targets_audit(*, voucher: Voucher, actor: User, before: dict[str, list[int]]) -> None:
    """After an operator's edit of what a voucher applies to: an entry if it changed."""
    after = voucher_targets(voucher)
    changed = [name for name in after if after[name] != before[name]]
    if changed:
        audit_record(
            actor=actor,
            action="voucher.targets",
            obj=voucher,
            brand_id=voucher.brand_id,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
        )


# --- codes ------------------------------------------------------------------------------------


def voucher_codes_generate(
    *,
    voucher: Voucher,
    count: int,
    prefix: str = "",
    usage_limit: int | None = 1,
    actor: User | None = None,
) -> list[VoucherCode]:
    """`count` new random codes (PREFIX-XXXXXXXX), each usable `usage_limit` times; an
    operator's (`actor`) batch of codes is audited."""
    if not 1 <= count <= 5000:
        raise ValidationError(_("Generate between 1 and 5000 codes at a time."))
    prefix = code_normalise(prefix)[:12]
    if prefix and not prefix.replace("-", "").replace("_", "").isalnum():
        raise ValidationError(_("A prefix of letters and digits only."))
    made: list[VoucherCode] = []
    with transaction.atomic():
        while len(made) < count:
            wanted = {
                f"{prefix}-{code_generate(8)}" if prefix else code_generate(10)
                for _n in range(count - len(made))
            }
            wanted -= set(
                VoucherCode.objects.filter(code__in=wanted).values_list("code", flat=True)
            )
            rows = [VoucherCode(voucher=voucher, code=c, usage_limit=usage_limit) for c in wanted]
            made += VoucherCode.objects.bulk_create(rows)
        if actor is not None:
            audit_record(
                actor=actor,
                action="voucher.codes",
                obj=voucher,
                brand_id=voucher.brand_id,
                after={"codes_added": len(made), "prefix": prefix, "usage_limit": usage_limit},
            )
    return made


def voucher_codes_rows(*, vouchers):
    """The header, then one row per code of the (already scoped) vouchers, in chunks."""
    yield ["voucher", "code", "usage_limit", "used", "personal", "created_at"]
    codes = (
        VoucherCode.objects.filter(voucher__in=vouchers)
        .select_related("voucher")
        .order_by("voucher_id", "id")
    )
    for code in codes.iterator(chunk_size=2000):
        yield [
            code.voucher.name,
            code.code,
            "" if code.usage_limit is None else code.usage_limit,
            code.used,
            "yes" if code.user_id else "",
            code.created_at.isoformat(),
        ]


def voucher_codes_csv(*, vouchers) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(voucher_codes_rows(vouchers=vouchers))
    return out.getvalue()


def voucher_codes_export(*, brand, params: dict):
    """The codes CSV of the selected vouchers of `brand`, for a worker's export job
    (catalog.exports)."""
    vouchers = Voucher.objects.filter(pk__in=params.get("ids", []), brand=brand)
    total = VoucherCode.objects.filter(voucher__in=vouchers).count()
    return total, voucher_codes_rows(vouchers=vouchers)


def voucher_claim(*, voucher: Voucher, user: User, placement=None) -> VoucherClaim:
    """Bind a scan-claimed voucher to the fan: their own code, usable once, by them only.
    Claiming again returns the first claim."""
    existing = (
        VoucherClaim.objects.select_related("code").filter(voucher=voucher, user=user).first()
    )
    if existing:
        return existing
    try:
        with transaction.atomic():
            code = voucher_codes_generate(voucher=voucher, count=1, prefix="FAN")[0]
            VoucherCode.objects.filter(pk=code.pk).update(user=user)
            code.user = user
            return VoucherClaim.objects.create(
                voucher=voucher, user=user, placement=placement, code=code
            )
    except IntegrityError:  # claimed at the same moment in another tab
        return VoucherClaim.objects.select_related("code").get(voucher=voucher, user=user)


def voucher_unpaid_orders_cancel(*, older_than: timedelta | None = None, limit: int = 200) -> int:
    """Beat sweep: an order placed with a voucher but never paid holds a use (and, with a
    usage limit, a place someone else could take). After VOUCHER_UNPAID_HOURS such an order
    is cancelled, which gives the use back; one whose payment is still being confirmed (3-D
    Secure, in flight) is left alone. In chunks; each order under its own lock."""
    from django.conf import settings

    from orders.fulfilment import order_cancel
    from orders.services import order_payment_in_progress

    older_than = older_than or timedelta(hours=settings.VOUCHER_UNPAID_HOURS)
    order_ids = list(
        VoucherUse.objects.filter(
            released_at=None,
            order__status=OrderStatus.PENDING_PAYMENT,
            created_at__lt=timezone.now() - older_than,
        )
        .order_by("order_id")
        .values_list("order_id", flat=True)[:limit]
    )
    cancelled = 0
    for order_id in order_ids:
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order_id)
            if order.status != OrderStatus.PENDING_PAYMENT or order_payment_in_progress(
                order=order
            ):
                continue
            order_cancel(  # its held stock goes back too
                order=order,
                actor=None,
                reason="Not paid in time: cancelled, its voucher use given back",
            )
            cancelled += 1
    return cancelled
