from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


def _rows_changed(user_ids) -> None:
    # Sessions read the row from a cache (accounts.user_cache): whatever changed it
    # (password, deactivation, name, deletion), their next request reads it again.
    from accounts.user_cache import user_row_changed

    for user_id in user_ids:
        user_row_changed(user_id=user_id)


class UserQuerySet(models.QuerySet):
    """Bulk writes (admin actions) retire the rows' cached copies as `save()` does."""

    def update(self, **kwargs) -> int:
        _rows_changed(list(self.values_list("pk", flat=True)))
        return super().update(**kwargs)

    def delete(self):
        _rows_changed(list(self.values_list("pk", flat=True)))
        return super().delete()


class EmailUserManager(UserManager.from_queryset(UserQuerySet)):
    """Users sign in with their email address; there is no username."""

    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


def avatar_upload_to(instance: "User", filename: str) -> str:
    return f"avatars/{instance.pk or 'new'}/{filename}"


class User(AbstractUser):
    username = None
    first_name = None
    last_name = None
    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(
        max_length=50,
        blank=True,
        help_text="How other fans see you. Unique: no two members share a name.",
    )
    # The name as it looks to a reader (accounts.names.name_skeleton): "Lin", "Lin." and
    # "Lin" with an invisible letter are one name, so no member can copy another's.
    name_key = models.CharField(max_length=150, blank=True, db_index=True, editable=False)
    avatar = models.ImageField(upload_to=avatar_upload_to, blank=True)
    handle = models.CharField(
        max_length=30,
        unique=True,
        help_text="Your @handle: how fans mention you and find your profile (/u/<handle>/).",
    )

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            # No two members share a name, whatever its case (accounts.names checks first, so
            # this only answers a race).
            models.UniqueConstraint(
                Lower("display_name"),
                condition=~models.Q(display_name=""),
                name="accounts_user_display_name_ci_unique",
                violation_error_message="Another member already uses that name.",
            ),
            # Stored lowercase, so the unique index is case-insensitive (accounts.handles).
            models.CheckConstraint(
                condition=models.Q(handle__regex=r"^[a-z0-9_-]{3,30}$"),
                name="accounts_user_handle_format",
            ),
        ]

    def __str__(self) -> str:
        return self.public_name

    def save(self, *args, **kwargs) -> None:
        # Every account has a handle, however it was made (sign-up, admin, createsuperuser):
        # one from the display name when the member chose none.
        if not self.handle:
            from accounts.handles import handle_suggest

            self.handle = handle_suggest(name=self.display_name, user=self)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "handle"}
        from accounts.names import name_skeleton

        self.name_key = name_skeleton(self.display_name)[:150] if self.display_name else ""
        fields = kwargs.get("update_fields")
        if fields is not None and "display_name" in fields:
            kwargs["update_fields"] = {*fields, "name_key"}
        super().save(*args, **kwargs)
        self._row_changed()

    def delete(self, *args, **kwargs):
        _rows_changed([self.pk])
        return super().delete(*args, **kwargs)

    def _row_changed(self) -> None:
        _rows_changed([self.pk])

    @property
    def public_name(self) -> str:
        # Never a part of the email address: that is private (and could be chosen to imitate).
        return self.display_name or f"Member #{self.pk}"

    @property
    def initials(self) -> str:
        return self.public_name[:2].upper()

    def get_full_name(self) -> str:
        return self.public_name

    def get_short_name(self) -> str:
        return self.public_name
