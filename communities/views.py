from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from communities.feed_cache import FEED_FRAGMENT_SECONDS, feed_version
from communities.forms import (
    CommentForm,
    DirectoryForm,
    IdeaForm,
    PostEditForm,
    PostForm,
    ReportForm,
)
from communities.honour import leaderboard
from communities.ideas import idea_create, idea_set_status, idea_upvote_toggle, ideas_of
from communities.invites import invite_accept, invite_create
from communities.models import (
    Comment,
    Idea,
    IdeaStatus,
    IdeaVote,
    Invite,
    Membership,
    Poll,
    Report,
)
from communities.moderation import moderation_queue, report_create, report_resolve
from communities.polls import poll_create, poll_results, poll_vote
from communities.selectors import (
    communities_of,
    community_directory,
    community_feed,
    community_for,
    honour_of,
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
    post_create,
    post_delete,
    post_like_toggle,
    post_set_pinned,
    post_update,
)


def _refused(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))


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


@require_GET
def detail(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    cursor = request.GET.get("after")
    feed, version = None, None
    if view.can_read and not request.user.is_authenticated:
        # Visitors share a cached fragment: the feed is read only when it has expired.
        version = feed_version(community_id=view.community.pk)
        feed = SimpleLazyObject(lambda: community_feed(view=view, user=request.user, cursor=cursor))
    elif view.can_read:
        feed = community_feed(view=view, user=request.user, cursor=cursor)
    return render(
        request,
        "communities/detail.html",
        {
            "view": view,
            "community": view.community,
            "feed": feed,
            "feed_version": version,
            "feed_seconds": FEED_FRAGMENT_SECONDS,
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
                poll=form.cleaned_data,
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
            try:
                comment_create(
                    post=post, author=request.user, body=form.cleaned_data["body"], parent=parent
                )
            except (PermissionDenied, ValidationError) as exc:
                _refused(request, exc)
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
    return redirect(next_url)


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


@transaction.atomic
def post_with_poll_create(*, poll: dict, **post_fields):
    """A post, and its poll when the form asked for one: both or neither."""
    post = post_create(**post_fields)
    if poll.get("poll_question"):
        poll_create(
            post=post,
            question=poll["poll_question"],
            options=poll["poll_option_list"],
            multiple=poll["poll_multiple"],
            closes_at=poll["poll_closes_at"],
        )
    return post


@login_required
@require_POST
def vote(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    post = post_for(view=view, user=request.user, pk=pk)
    poll = get_object_or_404(Poll, post=post)
    option_ids = [int(v) for v in request.POST.getlist("option") if v.isdigit()]
    try:
        poll_vote(poll=poll, user=request.user, option_ids=option_ids)
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
    comment = None
    if request.POST.get("comment"):
        comment = get_object_or_404(Comment, pk=request.POST["comment"], post=post)
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why this should be looked at.")
        return redirect(post.get_absolute_url())
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
        open_report = get_object_or_404(
            Report,
            pk=request.POST.get("report"),
            community=view.community,
            resolved_at__isnull=True,
        )
        report_resolve(
            report=open_report, moderator=request.user, hide=request.POST.get("decision") == "hide"
        )
        messages.success(request, "Done.")
        return redirect("communities:moderation", slug=slug)
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
    try:
        idea_set_status(
            idea=idea,
            moderator=request.user,
            status=request.POST.get("status", ""),
            response=request.POST.get("response", ""),
        )
    except (PermissionDenied, ValidationError) as exc:
        _refused(request, exc)
    return redirect("communities:ideas", slug=slug)


@login_required
@require_POST
def invite_new(request: HttpRequest, slug: str) -> HttpResponse:
    view = community_for(slug=slug, user=request.user)
    try:
        invite = invite_create(community=view.community, moderator=request.user)
    except PermissionDenied as exc:
        _refused(request, exc)
    else:
        link = request.build_absolute_uri(reverse("communities:invite", args=[invite.token]))
        messages.success(request, f"Invite link (7 days, 10 uses): {link}")
    return redirect(view.community.get_absolute_url())


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    found = Invite.objects.select_related("community").filter(token=token).first()
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


@login_required
@require_GET
def my_honour(request: HttpRequest) -> HttpResponse:
    """The signed-in member's level, points and badges in each community: a fragment for the
    profile page (accounts does not import communities)."""
    return render(request, "communities/_my_honour.html", {"rows": honour_of(user=request.user)})
