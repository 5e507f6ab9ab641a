from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.forms import AVATAR_MAX_SIDE
from accounts.handles import handle_check, handle_clean
from accounts.models import User
from accounts.names import display_name_check, name_clean
from uploads.images import image_verify_and_reencode

# Passed as `avatar` when the form left the avatar alone.
KEEP_AVATAR = object()


@transaction.atomic
def user_update_profile(
    *,
    user: User,
    display_name: str,
    avatar: UploadedFile | None | object = KEEP_AVATAR,
    handle: str | None = None,
) -> User:
    """Update the public profile. `avatar=None` removes the avatar; an upload is verified and
    re-encoded (raises ValidationError for anything that is not a sane image). The name and
    the handle (None: unchanged) are cleaned and refused when they imitate a brand, staff or
    another member."""
    update_fields = ["display_name"]
    if handle is not None:
        handle = handle_clean(handle)
        if handle != user.handle:
            try:
                handle_check(handle=handle, user=user)
            except ValidationError as exc:
                raise ValidationError({"handle": exc.error_list}) from exc
            user.handle = handle
            update_fields.append("handle")
    display_name = name_clean(display_name)
    if display_name != user.display_name:
        try:
            display_name_check(name=display_name, user=user)
        except ValidationError as exc:
            raise ValidationError({"display_name": exc.error_list}) from exc
    user.display_name = display_name
    old_avatar_name = user.avatar.name if user.avatar else ""
    if avatar is None:
        user.avatar = None
        update_fields.append("avatar")
    elif avatar is not KEEP_AVATAR:
        verified = image_verify_and_reencode(avatar, max_side=AVATAR_MAX_SIDE)
        user.avatar.save(verified.content.name, verified.content, save=False)
        update_fields.append("avatar")
    # The name's uniqueness is the database's (a lost race becomes a form error below).
    user.full_clean(exclude=["password"], validate_constraints=False)
    try:
        with transaction.atomic():  # a savepoint: a lost race on the name is a form error
            user.save(update_fields=update_fields)
    except IntegrityError as exc:
        if "accounts_user_handle" in str(exc):
            raise ValidationError(
                {"handle": "Another member already uses that handle."}, code="taken"
            ) from exc
        if "accounts_user_display_name_ci_unique" not in str(exc):
            raise
        raise ValidationError(
            {"display_name": "Another member already uses that name."}, code="taken"
        ) from exc
    if "avatar" in update_fields and old_avatar_name:
        storage = User._meta.get_field("avatar").storage
        transaction.on_commit(lambda: storage.delete(old_avatar_name))
    return user
