import re
from importlib import import_module

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.urls.resolvers import RoutePattern
from django.views.generic import TemplateView

from catalog.admin_scoping import admin_shortcut
from config import health
from console import views as console_views
from storefront import views as storefront_views


def app_urls(module: str) -> URLPattern | URLResolver:
    """`include(module)` at the root, tried only for paths that start with one of its
    routes' first segments: a lookahead that consumes nothing, so the app's routes (which
    name their own prefixes, "c/<slug>/") and their reversal stay as they are, while a
    request skips the patterns of every app before its own (resolving /c/... walked some 35
    patterns of five other apps first). An app with a route that starts with a converter or
    a regex is included as it is."""
    firsts = set()
    for entry in import_module(module).urlpatterns:
        route = entry.pattern
        if not isinstance(route, RoutePattern):
            return path("", include(module))
        first = str(route).split("/", 1)[0]
        if not first or "<" in first:
            return path("", include(module))
        firsts.add(re.escape(first))
    return re_path(rf"^(?=(?:{'|'.join(sorted(firsts))})(?:/|$))", include(module))


def section_not_built_yet(namespace: str, route: str, title: str, lead: str, empty: str):
    """The index of a section whose app is not built yet: a real, empty listing page under
    the URL and name the feature issue will keep (DESIGN.md's URL map). Each feature issue
    replaces its entry with `include("<app>.urls")`."""
    view = TemplateView.as_view(
        template_name="section_index.html",
        extra_context={"section_title": title, "section_lead": lead, "empty_message": empty},
    )
    return path("", include(([path(route, view, name="index")], namespace)))


urlpatterns = [
    path("", storefront_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    # Help, contact, shipping and returns, terms, privacy (storefront.Page, edited in the admin).
    re_path(
        r"^(?P<slug>help|contact|shipping|terms|privacy)/$",
        storefront_views.info_page,
        name="page",
    ),
    # Ahead of the admin's own "view on site" shortcut: the same URL, scoped to the brand.
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(admin_shortcut),
    ),
    # The brand console's own pages (console.views), behind the admin's sign-in.
    path(
        "admin/customers/", admin.site.admin_view(console_views.customers), name="console_customers"
    ),
    path(
        "admin/customers/<int:user_id>/",
        admin.site.admin_view(console_views.customer),
        name="console_customer",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("accounts/", include("accounts.urls")),
    app_urls("catalog.urls"),
    app_urls("storefront.urls"),
    app_urls("reviews.urls"),
    app_urls("orders.urls"),
    app_urls("payments.urls"),
    app_urls("notifications.urls"),
    app_urls("communities.urls"),
    app_urls("preorders.urls"),
    app_urls("crowdfunding.urls"),
    app_urls("marketing.urls"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

admin.site.site_header = "Fanhub operations"
admin.site.site_title = "Fanhub admin"
admin.site.index_title = "Your brands"
