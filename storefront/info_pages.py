"""The site's own pages: their starting text (seed_demo writes it; a page not written yet
shows it too, so the footer never links to a 404) and the one write, which renders the
Markdown through markup.markdown."""

from __future__ import annotations

from django.db import transaction

from markup.markdown import markdown_render
from storefront.models import Page

DEFAULT_PAGES: dict[str, tuple[str, str, str]] = {
    "help": (
        "Help",
        "Answers about orders, pre-orders, campaigns and communities.",
        """## Orders

Your orders are under **Account → Orders**. Each brand in an order ships its part on its own,
with its own tracking; the order page shows each part's state.

## Pre-orders

A pre-order batch is produced in the quantity fans reserve. We save your card when you reserve
and charge it only when the batch closes and reaches its minimum. If it does not, nobody is
charged and any deposit is refunded. You can change or cancel a reservation while the batch is
open, from **Your pre-orders**.

## Campaigns

Campaigns are all-or-nothing: backers are charged only if the goal is reached.

## Communities

Join a brand's fan club to post, vote on ideas and earn points. Private clubs ask a moderator
to approve you; invite-only clubs need an invite link from a member.

## Still stuck?

[Contact us](/contact/) and a person will answer.
""",
    ),
    "contact": (
        "Contact us",
        "How to reach the Fanhub team.",
        """We answer every message within two working days.

- **Email:** [support@fanhub.example](mailto:support@fanhub.example)
- **About an order:** include the order number (it starts with `FH-`), so we find it at once.
- **About a brand's product:** the brand's fan club is often the quickest place to ask; its
  team reads it every day.

See [Help](/help/) for the questions we are asked most, and
[Shipping and returns](/shipping/) for delivery times and refunds.
""",
    ),
    "shipping": (
        "Shipping and returns",
        "Delivery times, costs, and how to return an item.",
        """## Shipping

Each brand ships its own goods. In-stock items leave within three working days; pre-orders
ship when their batch is produced, at the date shown on the batch page. You get a tracking
link by email when a parcel leaves.

## Returns

You can return an unused item within **30 days** of delivery. Write to us from the
[contact page](/contact/) with your order number; once the brand receives the item, it is
refunded to the card you paid with, usually within five working days.

Pre-ordered items can be cancelled free of charge until the batch closes. After that they are
made for you, and are returned like any other item.
""",
    ),
    "terms": (
        "Terms of service",
        "The rules for using Fanhub.",
        """These terms apply when you use Fanhub to join communities, buy, reserve or pledge.

1. **Your account.** Keep your password to yourself; you are responsible for what is done
   with your account.
2. **Buying.** Each product is sold by its brand. Prices include the taxes shown at checkout.
3. **Pre-orders and campaigns.** Your card is charged only when a batch or a campaign succeeds,
   at its close. A reservation can be cancelled while the batch is open.
4. **Communities.** Be kind. Posts that harass, spam or break the law are removed, and their
   authors may be banned.
5. **Changes.** We tell you by email before these terms change in a way that matters to you.

Questions? [Contact us](/contact/).
""",
    ),
    "privacy": (
        "Privacy",
        "What we keep about you and why.",
        """We keep what we need to run your account and your orders, and nothing to sell.

- **What we keep:** your email address, display name, orders, reservations and posts. Cards
  are kept by our payment provider; we only see their brand and last four digits.
- **Why:** to deliver what you buy, charge what you reserve when a batch succeeds, and show
  your posts in your communities.
- **Who sees it:** a brand sees the orders and reservations placed with it. Other fans see
  only your display name and your posts.
- **Your choices:** change which emails you get in your notification preferences, or
  [contact us](/contact/) to have your account and its data deleted.
""",
    ),
}


def page_default(*, slug: str) -> Page | None:
    """The starting text of a page, unsaved."""
    if slug not in DEFAULT_PAGES:
        return None
    title, summary, body = DEFAULT_PAGES[slug]
    return Page(slug=slug, title=title, summary=summary, body=body, body_html=markdown_render(body))


@transaction.atomic
def page_save(*, page: Page) -> Page:
    page.body_html = markdown_render(page.body)
    page.full_clean()
    page.save()
    return page


def pages_seed() -> int:
    """Write the starting text of each page not written yet; returns how many were made."""
    made = 0
    for slug in DEFAULT_PAGES:
        if not Page.objects.filter(slug=slug).exists():
            page_save(page=page_default(slug=slug))
            made += 1
    return made
