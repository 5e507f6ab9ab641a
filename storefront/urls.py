from django.urls import path

from storefront import views

app_name = "storefront"
urlpatterns = [
    path("products/<slug:slug>/", views.product_detail, name="product"),
    path("products/<slug:slug>/options/", views.product_variant, name="product_variant"),
    path("products/<slug:slug>/links/", views.product_links, name="product_links"),
    path("products/<slug:slug>/stock-alert/", views.stock_alert_create, name="stock_alert"),
    path(
        "products/<slug:slug>/stock-alert/cancel/",
        views.stock_alert_delete,
        name="stock_alert_cancel",
    ),
    path("brands/<slug:slug>/", views.brand_detail, name="brand"),
    path("brands/<slug:slug>/offers/", views.brand_offers, name="brand_offers"),
    path("account/summary/", views.my_summary, name="my_summary"),
]
