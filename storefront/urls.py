from django.urls import path

from storefront import views

app_name = "storefront"
urlpatterns = [
    path("products/<slug:slug>/", views.product_detail, name="product"),
    path("brands/<slug:slug>/", views.brand_detail, name="brand"),
    path("brands/<slug:slug>/offers/", views.brand_offers, name="brand_offers"),
]
