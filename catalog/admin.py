from django.contrib import admin

from catalog.models import Brand


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    """Operators see and edit only the brands they operate; only superusers add or delete
    brands and change who operates them."""

    list_display = ["name", "slug", "created_at"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["operators"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(operators=request.user)

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["operators", "slug"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
