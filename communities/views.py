from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from catalog.listing_version import LISTING_VERSION
from communities.feed_cache import (
    COMMUNITY_PAGE,
    COMMUNITY_SLUGS,
    FEED_VERSION,
    feed_fragment,
    liked_overlay,
)
from communities.forms import (
    CommentForm,
    DirectoryForm,
    IdeaForm,
    IdeaStatusForm,
    PostEditForm,
    PostForm,
    ReportForm,
    ResolveForm,
    VoteForm,
)
from communities.honour import leaderboard
from communities.ideas import idea_create, idea_set_status, idea_upvote_toggle, ideas_of
from communities.invites import invite_accept, invite_create, invite_for
from communities.media import post_image_response
from communities.models import (
    Comment,
    Idea,
    IdeaStatus,
    IdeaVote,
    Membership,
    Poll,
    Report,
)
from communities.moderation import moderation_queue, report_create, report_resolve
from communities.polls import poll_results, poll_vote, post_with_poll_create
from communities.profiles import member_profile, mention_candidates, mention_lookup_allowed
from communities.selectors import (
    BadCursor,
    communities_of,
    community_directory,
    community_feed,
    community_feed_cursor,
    community_for,
    community_id_for,
    community_posts_search,
    member_badges,
    pending_requests,
    post_comments,
    post_for,
)
from communities.services import (
    comment_create,
    comment_delete,
    community_join,
    community_leave,
    member_ban,
    membership_decide,
    post_delete,
    post_like_toggle,
    post_set_pinned,
    post_update,
)
from communities.standing import MEMBER_STANDING, Standing, member_standing
from config.page_cache import PageKey, cached_page
from config.version_tokens import current_tokens
from orders.page_versions import tokens_and_cart_count

HONOUR_MARKER = "<!--fh:honour-->"  # detail.html's place for the member's "You here" card


def _refused(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))


def _bad_request(request: HttpRequest, message: str, back: str) -> HttpResponse:
    """Input no form of ours sends (a tampered id, an impossible date): a 400 that says what
    was wrong, and changes nothing."""
    return render(
        request, "communities/bad_request.html", {"message": message, "back": back}, status=400
    )


def _form_errors(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@require_GET
def directory(request: HttpRequest) -> HttpResponse:
    form = DirectoryForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {"q": "", "kind": ""}
    page = Paginator(community_directory(q=data["q"], kind=data["kind"]), 24).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    mine = list(communities_of(user=request.user)) if request.user.is_authenticated else []
    return render(
        request,
        "communities/directory.html",
        {
            "form": form,
            "page_obj": page,
            "communities": page.object_list,
            "query_string": query.urlencode(),
            "mine": mine,
        },
    )


# slug -> (id, public?, the slug map's version when read): a community page costs no query
# and one round trip to the cache, for a visitor and (with their standing) for a member.
_community_ids: dict[str, tuple[int, bool, str]] = {}


def _versions(community_id: int, request: HttpRequest) -> list[str]:
    """The slug map's, the community row's, its feed's, the catalogue's (brand names) and,
    for a member, their standing (`communities.standing`), with the header's cart count in
    the same round trip."""
    tokens = [
        (COMMUNITY_SLUGS, ""),
        (COMMUNITY_PAGE, community_id),
        (FEED_VERSION, community_id),
        (LISTING_VERSION, ""),
    ]
    if not request.user.is_authenticated:
        return current_tokens(*tokens)
    return tokens_and_cart_count(request, *tokens, (MEMBER_STANDING, request.user.pk))


def _known_community(slug: str, request: HttpRequest) -> tuple[int, bool, list[str]] | None:
    known = _community_ids.get(slug)
    if known is not None:
        community_id, public, slugs_then = known
        versions = _versions(community_id, request)
        if versions[0] == slugs_then:
            return community_id, public, versions
    slugs = COMMUNITY_SLUGS.current()
    found = community_id_for(slug=slug)
    if found is None:
        return None
    if len(_community_ids) >= 10_000:
        _community_ids.clear()
    _community_ids[slug] = (*found, slugs)
    return *found, _versions(found[0], request)


@dataclass(frozen=True)
class _MemberPage:
    """What a member's cached page fills in: their standing, and the token naming it."""

    standing: Standing
    token: str


def _detail_key(request: HttpRequest, slug: str) -> PageKey | None:
    """A community page shows the community's row (its version), its feed (by version), its
    brand's name (the catalogue's version) and the viewer's membership status and role;
    moderators (join requests) and searches are not cached."""
    if "q" in request.GET:
        return None
    user = request.user
    found = _known_community(slug, request)
    if found is None:
        return None  # the view's 404
    community_id, public, versions = found
    _, row, feed, catalogue, *standing_token = versions
    state = None
    standing = None
    if standing_token:
        standing = member_standing(
            user=user, community_id=community_id, token=standing_token[0], community_version=row
        )
        if standing.can_moderate:
            return None
        state = _MemberPage(standing, standing_token[0])
    readable = public or (standing is not None and standing.is_member)
    return PageKey(
        parts=(row, feed if readable else "", catalogue, standing.key_part if standing else "-"),
        state=state,
    )


def _detail_overlay(request: HttpRequest, html: str, page: _MemberPage | None) -> str:
    """The member's own parts of the shared members' page: their likes and standing."""
    if page is None or not page.standing.is_member:
        return html
    html = liked_overlay(html, user=request.user, standing=page.token)
    return html.replace(HONOUR_MARKER, page.standing.card_html)


@require_GET
@cached_page(key=_detail_key, overlay=_detail_overlay)
def detail(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    cursor = request.GET.get("after")
    feed_html = None
    if view.can_read and cursor is not None:
        try:  # before the cache: a bad cursor is a 400 even when the fragment is warm
            community_feed_cursor(cursor)
        except BadCursor as exc:
            return _bad_request(request, str(exc), view.community.get_absolute_url())
    q = request.GET.get("q", "")[:100].strip()
    found = None
    if view.can_read and q:
        found = community_posts_search(view=view, q=q)
    elif view.can_read:
        # Everyone shares cached fragments; a member's likes are filled in (one query).
        feed_html = feed_fragment(request=request, view=view, cursor=cursor)
    return render(
        request,
        "communities/detail.html",
        {
            "view": view,
            "community": view.community,
            "feed_html": feed_html,
            "q": q,
            "found": found,
            "post_form": PostForm() if view.is_member else None,
            "requests": pending_requests(view=view),
            "my_badges": member_badges(view=view),
        },
    )


@require_GET
def leaderboard_view(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user, readable=True)
    return render(
        request,
        "communities/leaderboard.html",
        {"view": view, "community": view.community, "board": leaderboard(community=view.community)},
    )


@login_required
@require_POST
def join(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    try:
        membership = community_join(community=view.community, user=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            f"Welcome to {view.community.name}!"
            if membership.is_active
            else "Your request was sent to the moderators.",
        )
    return redirect(view.community.get_absolute_url())


@login_required
@require_POST
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    try:
        community_leave(community=view.community, user=request.user)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"You left {view.community.name}.")
    return redirect(view.community.get_absolute_url())


@login_required
@require_POST
def decide(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    membership = get_object_or_404(Membership, pk=membership_id, community=view.community)
    try:
        membership_decide(
            membership=membership,
            moderator=request.user,
            approve=request.POST.get("decision") == "approve",
        )
    except PermissionDenied as exc:
        _refused(request, exc)
    return redirect(view.community.get_absolute_url())


@login_required
@require_POST
def ban(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    target = get_object_or_404(User, pk=user_id)
    try:
        member_ban(community=view.community, user=target, moderator=request.user)
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"{target.public_name} is banned from {view.community.name}.")
    # (a refusal leaves the membership as it was)
    return redirect(view.community.get_absolute_url())


@login_required
@require_POST
def post_new(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    form = PostForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            post = post_with_poll_create(
                community=view.community,
                author=request.user,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                image=form.cleaned_data["image"],
                announcement=form.cleaned_data["announcement"],
                poll_question=form.cleaned_data["poll_question"],
                poll_options=form.cleaned_data["poll_option_list"],
                poll_multiple=form.cleaned_data["poll_multiple"],
                poll_closes_at=form.cleaned_data["poll_closes_at"],
            )
        except ValidationError as exc:
            form.add_error(
                "image" if "image" in str(exc).lower() or "pixel" in str(exc) else None, exc
            )
        except PermissionDenied as exc:
            _refused(request, exc)
            return redirect(view.community.get_absolute_url())
        else:
            messages.success(request, "Your post is up.")
            return redirect(post.get_absolute_url())
    feed = community_feed(view=view, user=request.user) if view.can_read else None
    return render(
        request,
        "communities/detail.html",
        {
            "view": view,
            "community": view.community,
            "feed": feed,
            "post_form": form,
            "requests": pending_requests(view=view),
        },
        status=400,
    )


@require_http_methods(["GET", "POST"])
def post_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    form = CommentForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        if form.is_valid():
            parent = None
            if form.cleaned_data["parent"]:
                parent = Comment.objects.filter(pk=form.cleaned_data["parent"], post=post).first()
                if parent is None:  # never a silent top-level comment instead of a reply
                    gone = "The comment you replied to is no longer there."
                    messages.error(request, gone)
                    form.add_error(None, gone)
            if form.is_valid():
                try:
                    comment_create(
                        post=post,
                        author=request.user,
                        body=form.cleaned_data["body"],
                        parent=parent,
                    )
                except (PermissionDenied, ValidationError) as exc:
                    _refused(request, exc)
                    form.add_error(None, " ".join(getattr(exc, "messages", [str(exc)])))
                else:
                    return redirect(f"{post.get_absolute_url()}#comments")
    return render(
        request,
        "communities/post_detail.html",
        {
            "view": view,
            "community": view.community,
            "post": post,
            "comments": post_comments(post=post),
            "poll": poll_results(poll=post.poll, user=request.user)
            if getattr(post, "poll", None)
            else None,
            "report_form": ReportForm(),
            "comment_form": form,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def post_like(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    try:
        liked = post_like_toggle(post=post, user=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
        return redirect(post.get_absolute_url())
    post.refresh_from_db(fields=["like_count"])
    if request.htmx:
        return render(
            request,
            "communities/_like_button.html",
            {"post": post, "liked": liked, "community": view.community},
        )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = post.get_absolute_url()
    return HttpResponseRedirect(next_url)  # a path, never a view name to reverse


@login_required
@require_POST
def post_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    try:
        post_delete(post=post, user=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
        return redirect(post.get_absolute_url())
    messages.success(request, "The post was removed.")
    return redirect(view.community.get_absolute_url())


@login_required
@require_POST
def post_pin(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    try:
        post_set_pinned(post=post, moderator=request.user, pinned=not post.is_pinned)
    except PermissionDenied as exc:
        _refused(request, exc)
    return redirect(post.get_absolute_url())


@login_required
@require_POST
def comment_remove(request: HttpRequest, slug: str, pk: int, comment_id: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    comment = get_object_or_404(Comment, pk=comment_id, post=post)
    try:
        comment_delete(comment=comment, user=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
    return redirect(f"{post.get_absolute_url()}#comments")


@require_GET
def post_image(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The post's image, for those who may read the post (communities.media)."""
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    if not post.image:
        raise Http404("No such image")
    return post_image_response(post=post, public=view.community.is_public)


@login_required
@require_POST
def vote(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    poll = get_object_or_404(Poll, post=post)
    form = VoteForm(request.POST, option_ids=list(poll.options.values_list("pk", flat=True)))
    if not form.is_valid():
        return _bad_request(request, _form_errors(form), post.get_absolute_url())
    try:
        poll_vote(poll=poll, user=request.user, option_ids=form.cleaned_data["option"])
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Thanks for voting!")
    return redirect(post.get_absolute_url())


@login_required
@require_POST
def report(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    form = ReportForm(request.POST)
    if not form.is_valid():
        if "comment" in form.errors:
            return _bad_request(
                request, "That is not a comment of this post.", post.get_absolute_url()
            )
        messages.error(request, "Say why this should be looked at.")
        return redirect(post.get_absolute_url())
    comment = None
    if form.cleaned_data["comment"]:
        comment = get_object_or_404(Comment, pk=form.cleaned_data["comment"], post=post)
    try:
        report_create(
            reporter=request.user,
            reason=form.cleaned_data["reason"],
            post=None if comment else post,
            comment=comment,
        )
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Thanks: the moderators will take a look.")
    return redirect(post.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def moderation(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    if not view.can_moderate:
        raise Http404("No such page")
    if request.method == "POST":
        form = ResolveForm(request.POST)
        back = reverse("communities:moderation", args=[slug])
        if not form.is_valid():
            return _bad_request(request, _form_errors(form), back)
        open_report = Report.objects.filter(
            pk=form.cleaned_data["report"], community=view.community, resolved_at__isnull=True
        ).first()
        if open_report is None:
            messages.error(request, "That report was already decided or does not exist.")
            return redirect(back)
        try:
            report_resolve(
                report=open_report,
                moderator=request.user,
                hide=form.cleaned_data["decision"] == "hide",
            )
        except PermissionDenied as exc:
            _refused(request, exc)
        else:
            messages.success(request, "Done.")
        return redirect(back)
    return render(
        request,
        "communities/moderation.html",
        {
            "view": view,
            "community": view.community,
            "reports": moderation_queue(community=view.community, moderator=request.user),
        },
    )


@require_http_methods(["GET", "POST"])
def ideas(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user, readable=True)
    form = IdeaForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        if form.is_valid():
            try:
                idea_create(community=view.community, author=request.user, **form.cleaned_data)
            except (PermissionDenied, ValidationError) as exc:
                _refused(request, exc)
            else:
                messages.success(request, "Your idea is up for votes.")
                return redirect("communities:ideas", slug=slug)
    voted = set()
    if request.user.is_authenticated:
        voted = set(
            IdeaVote.objects.filter(user=request.user, idea__community=view.community).values_list(
                "idea_id", flat=True
            )
        )
    return render(
        request,
        "communities/ideas.html",
        {
            "view": view,
            "community": view.community,
            "ideas": ideas_of(community=view.community),
            "form": form,
            "voted": voted,
            "statuses": IdeaStatus.choices,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def idea_upvote(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user, readable=True)
    idea = get_object_or_404(Idea, pk=pk, community=view.community)
    try:
        idea_upvote_toggle(idea=idea, user=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
    return redirect("communities:ideas", slug=slug)


@login_required
@require_POST
def idea_status(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user, readable=True)
    idea = get_object_or_404(Idea, pk=pk, community=view.community)
    form = IdeaStatusForm(request.POST)
    back = reverse("communities:ideas", args=[slug])
    if not form.is_valid():
        return _bad_request(request, _form_errors(form), back)
    try:
        idea_set_status(idea=idea, moderator=request.user, **form.cleaned_data)
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    return redirect(back)


@login_required
@require_POST
def invite_new(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    try:
        invite = invite_create(community=view.community, moderator=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
    else:
        # The invite's own page keeps the link on screen with a copy button (a message fades).
        messages.success(request, "Invite link made: copy it and send it to whom you invite.")
        return redirect(reverse("communities:invite", args=[invite.token]))
    return redirect(view.community.get_absolute_url())


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    found = invite_for(token=token)
    if found is None:
        raise Http404("No such invite")
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        try:
            invite_accept(token=token, user=request.user)
        except PermissionDenied as exc:
            _refused(request, exc)
        else:
            messages.success(request, f"Welcome to {found.community.name}!")
            return redirect(found.community.get_absolute_url())
    return render(
        request, "communities/invite.html", {"invite": found, "community": found.community}
    )


@login_required
@require_http_methods(["GET", "POST"])
def post_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    if post.author_id != request.user.pk:
        raise Http404("No such post")
    form = PostEditForm(request.POST or None, initial={"title": post.title, "body": post.body})
    if request.method == "POST" and form.is_valid():
        post_update(post=post, editor=request.user, **form.cleaned_data)
        messages.success(request, "Your post was updated.")
        return redirect(post.get_absolute_url())
    return render(
        request,
        "communities/post_edit.html",
        {"view": view, "community": view.community, "post": post, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@require_GET
def member(request: HttpRequest, handle: str) -> HttpResponse:
    """A member's public profile: name, levels and badges, recent posts, in the communities
    the viewer may read. Never orders or email."""
    return render(
        request,
        "communities/member.html",
        {"profile": member_profile(handle=handle, viewer=request.user)},
    )


@login_required
@require_GET
def mention_suggestions(request: HttpRequest, slug: str) -> HttpResponse:
    """The composers' @mention autocomplete (an htmx fragment): members of this community
    whose handle or name starts with `q`. Only for its active members; rate-limited."""
    view = community_for(slug=slug, user=request.user, readable=True)
    if not view.is_member:
        raise PermissionDenied("Only members mention members here.")
    if not mention_lookup_allowed(user=request.user):
        return HttpResponse("Too many lookups; wait a moment.", status=429)
    return render(
        request,
        "communities/_mention_suggestions.html",
        {
            "members": mention_candidates(view=view, prefix=request.GET.get("q", "")),
            "community": view.community,
        },
    )
