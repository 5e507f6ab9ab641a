from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import ProfileForm
from accounts.services import KEEP_AVATAR, user_update_profile


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ProfileForm(
            request.POST, request.FILES, user=user, initial={"avatar": user.avatar or None}
        )
        if form.is_valid():
            avatar = form.cleaned_data["avatar"]
            if avatar is False:  # "clear" ticked
                avatar_change = None
            elif avatar and avatar != user.avatar:
                avatar_change = avatar
            else:
                avatar_change = KEEP_AVATAR
            try:
                user_update_profile(
                    user=user,
                    display_name=form.cleaned_data["display_name"],
                    handle=form.cleaned_data["handle"],
                    avatar=avatar_change,
                )
            except ValidationError as exc:
                user.refresh_from_db()
                if hasattr(exc, "error_dict"):
                    form.add_error(None, exc)
                else:
                    form.add_error("avatar" if avatar_change is not KEEP_AVATAR else None, exc)
            else:
                messages.success(request, "Your profile was saved.")
                return redirect("accounts:profile")
        status = 400
    else:
        form = ProfileForm(
            user=user,
            initial={
                "display_name": user.display_name,
                "handle": user.handle,
                "avatar": user.avatar or None,
            },
        )
        status = 200
    return render(request, "accounts/profile.html", {"form": form}, status=status)
