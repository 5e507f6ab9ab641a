"""Demo communities: a fan club per demo brand and a regional circle, with members, posts,
comments, likes and a pinned announcement."""

from catalog.models import Brand
from communities.ideas import idea_create, idea_upvote_toggle
from communities.models import Community, Membership, Post, Role, Visibility
from communities.polls import poll_create
from communities.services import comment_create, post_create, post_like_toggle
from markup.markdown import markdown_render

COMMUNITIES = [
    (
        "nimbus-mobile",
        "Nimbus Fans",
        "nimbus-fans",
        "brand",
        Visibility.PUBLIC,
        "The official fan club of **Nimbus Mobile**: talk phones, vote on the next flagship.",
    ),
    (
        "forge-audio",
        "Forge Listeners",
        "forge-listeners",
        "brand",
        Visibility.PUBLIC,
        "Headphone nerds and makers who tune Forge's sound with the team.",
    ),
    (
        None,
        "Berlin Gadget Circle",
        "berlin-gadgets",
        "region",
        Visibility.PRIVATE,
        "Meet-ups and swaps for gadget fans in Berlin. Members only.",
    ),
]
IDEAS = [
    ("A compact model", "Under 6 inches, same camera. Many of us want a one-hand phone."),
    ("Bring back the headphone jack", "Wired audio still matters to listeners."),
]
POSTS = [
    ("Which colour for the X3?", "Sunset was a hit on the X2. Glacier or **Lime** next?"),
    ("My desk setup", "Finally got the X2 Pro and the Studio headphones side by side."),
    ("Battery tips", "Turn on adaptive refresh: I get two days out of mine."),
]


def demo_seed_communities(*, fans, operators_by_brand) -> int:
    created = 0
    for brand_slug, name, slug, kind, visibility, description in COMMUNITIES:
        if Community.objects.filter(slug=slug).exists():
            continue
        brand = Brand.objects.filter(slug=brand_slug).first() if brand_slug else None
        community = Community.objects.create(
            brand=brand,
            name=name,
            slug=slug,
            kind=kind,
            visibility=visibility,
            description=description,
            description_html=markdown_render(description),
            rules="Be kind. No spam. Stay on topic.",
            rules_html=markdown_render("Be kind. No spam. Stay on topic."),
        )
        owner = operators_by_brand.get(brand_slug) or fans[0]
        Membership.objects.create(community=community, user=owner, role=Role.OWNER)
        for fan in fans:
            if fan != owner:
                Membership.objects.get_or_create(community=community, user=fan)
        Community.objects.filter(pk=community.pk).update(member_count=community.memberships.count())
        announcement = post_create(
            community=community,
            author=owner,
            title=f"Welcome to {name}!",
            body="Introduce yourself below. Read the rules first.",
            announcement=True,
            rate_limited=False,
        )
        Post.objects.filter(pk=announcement.pk).update(is_pinned=True)
        for n, (title, body) in enumerate(POSTS):
            post = post_create(
                community=community,
                author=fans[(n + 1) % len(fans)],
                title=title,
                body=body,
                rate_limited=False,
            )
            if n == 0:
                poll_create(
                    post=post,
                    question="Which colour should the next model come in?",
                    options=["Sunset", "Glacier", "Lime"],
                )
            comment_create(
                post=post, author=fans[(n + 2) % len(fans)], body="Love this!", rate_limited=False
            )
            for fan in fans[: 2 + n]:
                post_like_toggle(post=post, user=fan)
        for n, (title, description) in enumerate(IDEAS):
            idea = idea_create(
                community=community,
                author=fans[n % len(fans)],
                title=title,
                description=description,
            )
            for fan in fans[: 4 - n]:
                idea_upvote_toggle(idea=idea, user=fan)
        created += 1
    return created
