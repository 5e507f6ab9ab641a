"""Admin access for objects that belong to no brand (users, groups, the site): superusers
only. Brand-owned objects use catalog.admin_scoping instead."""

from django.contrib import admin
from django.http import HttpRequest


class SuperuserOnlyAdminMixin:
    def _is_superuser(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._is_superuser(request)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return self._is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._is_superuser(request)


def superuser_only(model, admin_class: type[admin.ModelAdmin]) -> None:
    """Re-register a third-party model's admin as superuser-only."""
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(
        model,
        type(f"SuperuserOnly{admin_class.__name__}", (SuperuserOnlyAdminMixin, admin_class), {}),
    )
