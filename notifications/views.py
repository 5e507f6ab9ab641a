from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications.forms import PreferencesForm
from notifications.models import Notification, NotificationKind
from notifications.selectors import notifications_for, unread_count
from notifications.services import channels_for, notifications_mark_read, preferences_save


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    page = Paginator(notifications_for(user_id=request.user.pk), 30).get_page(
        request.GET.get("page")
    )
    return render(
        request, "notifications/index.html", {"page_obj": page, "notifications": page.object_list}
    )


@login_required
@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    """The unread count beside the bell, fetched by htmx so pages keep their query count."""
    return render(
        request, "notifications/_badge.html", {"count": unread_count(user_id=request.user.pk)}
    )


@login_required
@require_POST
def open_notification(request: HttpRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(Notification, pk=pk, recipient=request.user)
    notifications_mark_read(user_id=request.user.pk, ids=[notification.pk])
    safe = url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()})
    return redirect(notification.url if notification.url and safe else "notifications:index")


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = notifications_mark_read(user_id=request.user.pk)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked as read.")
    return redirect("notifications:index")


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    current = {}
    for kind in NotificationKind:
        current.update({kind: channels_for(user_ids=[request.user.pk], kind=kind)[request.user.pk]})
    form = PreferencesForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        preferences_save(user_id=request.user.pk, choices=form.choices())
        messages.success(request, "Your notification settings were saved.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})
